"""The measurement docs open with their answer, speak only of paths in the repository,
and keep their dated runs in docs/log/, every one reachable from the log's index."""

import re

import pytest

from conftest import REPO

SUMMARY_DOCS = ("docs/PERFORMANCE.md", "docs/RELIABILITY.md")
SUMMARY_COLUMNS = ["claim", "target", "latest figure", "command", "commit", "date"]
# How far down a reader may have to scroll to find the answer: about one screen.
SUMMARY_WITHIN_LINES = 40
# Spellings of a path outside the checkout: a parent directory, the machine's shared
# work tree, the project's reference notes that live beside the repository.
OUTSIDE_PATHS = ("../", "/work/", "shared/reference")
LOG_DIR = REPO / "docs" / "log"
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)")


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def summary_table(doc: str) -> tuple[int, list[list[str]]]:
    """The first table in the doc whose header is SUMMARY_COLUMNS: its line number (1-based)
    and its data rows."""
    lines = (REPO / doc).read_text().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("|") and [c.lower() for c in cells(line)] == SUMMARY_COLUMNS:
            rows = []
            for row in lines[i + 2:]:
                if not row.lstrip().startswith("|"):
                    break
                rows.append(cells(row))
            return i + 1, rows
    return 0, []


def docs_files() -> list:
    return sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]


@pytest.mark.parametrize("doc", SUMMARY_DOCS)
def test_doc_opens_with_its_summary_table(doc):
    line, rows = summary_table(doc)
    assert line, f"{doc} has no table with the columns {SUMMARY_COLUMNS}"
    assert line <= SUMMARY_WITHIN_LINES, f"{doc}: the summary table starts at line {line}"
    assert rows, f"{doc}: the summary table has no rows"
    for row in rows:
        assert len(row) == 6, f"{doc}: a summary row without 6 cells: {row}"
        claim, _target, figure, command, commit, date = row
        assert claim and figure, f"{doc}: a summary row without claim or figure: {row}"
        assert command.startswith("`") and ("bench/" in command or "orbitdock-load" in command), \
            f"{doc}: {claim}: the command is not one of this repository's: {command}"
        assert re.match(r"`[0-9a-f]{7,40}`", commit), f"{doc}: {claim}: no commit: {commit}"
        assert re.match(r"\d{4}-\d{2}-\d{2}", date), f"{doc}: {claim}: no date: {date}"


@pytest.mark.parametrize("path", docs_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_docs_speak_only_of_paths_in_the_repository(path):
    for n, line in enumerate(path.read_text().splitlines(), 1):
        for outside in OUTSIDE_PATHS:
            assert outside not in line, \
                f"{path.relative_to(REPO)}:{n} names a path outside the repository: {line.strip()}"


def test_every_log_file_is_linked_from_the_log_index():
    index = (LOG_DIR / "README.md").read_text()
    linked = set(MARKDOWN_LINK.findall(index))
    logs = {p.name for p in LOG_DIR.glob("*.md")} - {"README.md"}
    assert logs, "docs/log/ holds no log file"
    unlinked, missing = sorted(logs - linked), sorted(linked - logs)
    assert not unlinked, f"log files not linked from docs/log/README.md: {unlinked}"
    assert not missing, f"docs/log/README.md links to missing files: {missing}"


def test_every_log_file_supports_a_claim_of_the_summary_tables():
    claims = {doc: {row[0] for row in summary_table(doc)[1]} for doc in SUMMARY_DOCS}
    for log in sorted(LOG_DIR.glob("2*.md")):
        supports = [line for line in log.read_text().splitlines() if line.startswith("Supports: ")]
        assert supports, f"{log.name} does not say which claim it supports"
        named = re.findall(r'(docs/\w+\.md), "([^"]+)"', supports[0])
        assert named, f"{log.name}: no claim named in {supports[0]!r}"
        for doc, claim in named:
            assert claim in claims.get(doc, ()), f"{log.name}: {doc} has no claim {claim!r}"
