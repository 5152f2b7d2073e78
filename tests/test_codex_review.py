"""orbitdock.codex.review: targets, the git check, findings from the rollout or the text."""

from __future__ import annotations

import json

import pytest

from orbitdock.codex import review

TEXT = ("Fine overall.\n\nReview comment:\n\n- [P1] Magic number — /w/hello.py:2-3\n"
        "  x = 1 is unexplained.\n  Name it.\n- Typo — /w/a.py:7-7\n  teh")


def test_targets_and_their_values():
    assert review.target_params("uncommitted", None) == {"type": "uncommittedChanges"}
    assert review.target_params("base_branch", "main") == {"type": "baseBranch", "branch": "main"}
    assert review.target_params("commit", "abc") == {"type": "commit", "sha": "abc"}
    assert review.target_params("custom", "look") == {"type": "custom", "instructions": "look"}
    with pytest.raises(ValueError, match="needs a value"):
        review.target_params("commit", None)


def test_findings_parsed_from_codex_text():
    got = review.from_text(TEXT)
    assert got["explanation"] == "Fine overall." and got["verdict"] is None
    assert got["findings"] == [
        {"title": "Magic number", "body": "x = 1 is unexplained.\nName it.", "priority": 1,
         "confidence": None, "file": "/w/hello.py", "line_start": 2, "line_end": 3},
        {"title": "Typo", "body": "teh", "priority": None, "confidence": None,
         "file": "/w/a.py", "line_start": 7, "line_end": 7}]


def test_findings_from_the_newest_rollout_of_the_thread(tmp_path):
    thread = "01a2-thread"
    first = tmp_path / f"rollout-2026-12-07T10-00-00-{thread}.jsonl"
    first.write_text("{}\n")
    output = {"findings": [{"title": "T", "body": "B", "priority": 0, "confidence_score": 0.5,
                            "code_location": {"absolute_file_path": "/f",
                                              "line_range": {"start": 1, "end": 4}}}],
              "overall_correctness": "patch is incorrect", "overall_explanation": "E"}
    line = {"type": "event_msg", "payload": {"type": "item_completed", "item": {
        "type": "ExitedReviewMode", "review_output": output}}}
    (tmp_path / f"rollout-2026-12-07T10-00-00-{thread}_x.jsonl").write_text(
        "{}\n" + json.dumps(line) + "\n{}\n")  # thread/revert's newer file
    got = review.from_rollout(str(first), thread, 1 << 20)
    assert got == {"verdict": "patch is incorrect", "explanation": "E", "findings": [
        {"title": "T", "body": "B", "priority": 0, "confidence": 0.5, "file": "/f",
         "line_start": 1, "line_end": 4}]}
    assert review.from_rollout(str(first), "other-thread", 1 << 20) is None


def test_git_checkout_is_found_above_the_cwd(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "src").mkdir()
    assert review.in_git_checkout(str(tmp_path / "repo" / "src"))
