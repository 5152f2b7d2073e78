"""Codex review mode (``review/start``): targets, the git check, and the findings (pure).

codex 0.169 sends the review only as formatted text (``exitedReviewMode.review``); the
structured output the model gave (findings with priority and line range, the verdict)
is written to the thread's rollout as ``ExitedReviewMode.review_output``. The findings
are taken from there, else parsed from the text (no priority or verdict then).
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

import orjson

TARGETS = ("uncommitted", "base_branch", "commit", "custom")


def target_params(target: str, value: str | None) -> dict[str, Any]:
    """The ``target`` object of review/start; ValueError for a target without its value."""
    if target == "uncommitted":
        return {"type": "uncommittedChanges"}
    if not value:
        raise ValueError(f"target {target} needs a value (branch, commit sha or instructions)")
    if target == "base_branch":
        return {"type": "baseBranch", "branch": value}
    if target == "commit":
        return {"type": "commit", "sha": value}
    if target == "custom":
        return {"type": "custom", "instructions": value}
    raise ValueError(f"target: unknown {target!r}; expected one of {', '.join(TARGETS)}")


def in_git_checkout(cwd: str) -> bool:
    """Whether ``cwd`` is inside a git work tree (a ``.git`` directory or file above it)."""
    path = os.path.abspath(cwd)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


def _finding(raw: dict[str, Any]) -> dict[str, Any]:
    where = raw.get("code_location") or {}
    lines = where.get("line_range") or {}
    return {"title": raw.get("title", ""), "body": raw.get("body", ""),
            "priority": raw.get("priority"), "confidence": raw.get("confidence_score"),
            "file": where.get("absolute_file_path"), "line_start": lines.get("start"),
            "line_end": lines.get("end")}


def from_rollout(transcript_path: str | None, thread_id: str | None,
                 tail_bytes: int) -> dict[str, Any] | None:
    """The last review_output within the last ``tail_bytes`` of the thread's newest rollout
    file (thread/revert writes the thread to a new file beside the first), or None."""
    if not transcript_path or not thread_id:
        return None
    files = glob.glob(os.path.join(glob.escape(os.path.dirname(transcript_path)),
                                   f"rollout-*{glob.escape(thread_id)}*.jsonl"))
    files.append(transcript_path)
    newest = max((f for f in files if os.path.exists(f)), key=os.path.getmtime, default=None)
    if newest is None:
        return None
    with open(newest, "rb") as fh:
        fh.seek(max(0, os.path.getsize(newest) - tail_bytes))
        lines = fh.read().splitlines()
    for line in reversed(lines):
        if b"review_output" not in line:
            continue
        try:
            item = (orjson.loads(line).get("payload") or {}).get("item") or {}
        except orjson.JSONDecodeError:
            continue
        output = item.get("review_output")
        if isinstance(output, dict):
            return {"verdict": output.get("overall_correctness"),
                    "explanation": output.get("overall_explanation"),
                    "findings": [_finding(f) for f in output.get("findings") or []]}
    return None


_FINDING_LINE = re.compile(r"^- (?:\[P(\d)\] )?(.*?) — (.*?):(\d+)-(\d+)$")


def from_text(text: str) -> dict[str, Any]:
    """codex's formatted review ("explanation\n\nReview comment:\n\n- title — file:a-b\n  body")."""
    explanation, _, rest = text.partition("\n\nReview comment")
    findings: list[dict[str, Any]] = []
    for line in rest.splitlines():
        match = _FINDING_LINE.match(line)
        if match:
            priority, title, path, start, end = match.groups()
            findings.append({"title": title, "body": "", "priority": int(priority) if priority
                             else None, "confidence": None, "file": path,
                             "line_start": int(start), "line_end": int(end)})
        elif line.startswith("  ") and findings:
            findings[-1]["body"] = (findings[-1]["body"] + "\n" + line[2:]).strip("\n")
    return {"verdict": None, "explanation": explanation.strip(), "findings": findings}
