"""`orbitdockctl logs`: the daemon's log file (JSON lines), filtered, for people.

Reads ``<data dir>/logs/orbitdockd.log`` (``logging.file``) and its rotated
predecessors directly, so it works whether or not the daemon is running. ``-f``
follows the file the way ``tail -F`` does: when the daemon rotates it, the rest of
the old file is read, then any backups rotated after it (several rotations between
two looks), then the new file from its start. Only a rotation during that catching-up
itself can still skip lines. Ctrl-C ends it.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from orbitdock import logs
from orbitdock.cli.common import EXIT_FAILED, CommandFailed, Context, pass_ctx
from orbitdock.paths import layout


class EntryFilter:
    """Which entries to print: at least ``level``, and about ``session`` if given."""

    def __init__(self, level: str | None, session: str | None):
        try:
            self.min_level = logs.level_number(level) if level else 0
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--level") from None
        self.session = session

    def __call__(self, entry: dict[str, Any]) -> bool:
        level = str(entry.get("level", "info"))
        try:
            number = logs.level_number(level)
        except ValueError:
            number = 0
        if number < self.min_level:
            return False
        if self.session is None:
            return True
        # Its own field, or named in the message (codex's lines, the demo's hint).
        return entry.get("session_id") == self.session or self.session in str(entry.get("msg", ""))


def parse(line: str) -> dict[str, Any]:
    """A log line as an entry; a line that is not one of ours is shown as it is."""
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        return {"level": "info", "logger": "?", "msg": line.rstrip("\n")}
    return entry


def backup_files(path: Path) -> list[Path]:
    """The log's rotated backups, newest first: orbitdockd.log.1, .log.2 ..."""
    files = []
    while (backup := path.with_name(f"{path.name}.{len(files) + 1}")).exists():
        files.append(backup)
    return files


def last_entries(path: Path, current_text: str, keep: EntryFilter,
                 count: int) -> list[dict[str, Any]]:
    """The last ``count`` entries that pass ``keep``, oldest first: from ``current_text``
    (the log as just read), then as far back through the backups as needed."""
    if count <= 0:
        return []
    found: deque[dict[str, Any]] = deque()
    for file in [None, *backup_files(path)]:  # newest first; stop once we have enough
        try:
            text = current_text if file is None else file.read_text("utf-8", errors="replace")
        except FileNotFoundError:  # rotated away meanwhile
            continue
        chunk = [entry for entry in map(parse, text.splitlines()) if keep(entry)]
        if chunk:
            found.extendleft(reversed(chunk[-(count - len(found)):]))
        if len(found) >= count:
            break
    return list(found)


def follow(path: Path, poll_s: float, handle: TextIO | None,
           partial: str = "") -> Iterator[dict[str, Any]]:
    """Entries appended to ``path`` from ``handle``'s position on (``None``: from the start
    of the file once it appears), across rotation; never returns. ``partial``: the
    unfinished last line already read."""
    while True:
        if handle is None:
            try:
                handle = open(path, encoding="utf-8", errors="replace")
            except FileNotFoundError:
                time.sleep(poll_s)
                continue
        chunk = handle.read()
        if chunk:
            *lines, partial = (partial + chunk).split("\n")
            for line in lines:
                if line:
                    yield parse(line)
            continue
        if _replaced(path, handle):
            # Rotated: what was written to the old file before the rename was just read.
            if partial:
                yield parse(partial)
            # Rotated more than once since the last look: the files in between, whole.
            for skipped in _newer_backups(path, os.fstat(handle.fileno()).st_ino):
                try:
                    text = skipped.read_text(encoding="utf-8", errors="replace")
                except FileNotFoundError:
                    continue
                yield from (parse(line) for line in text.splitlines() if line)
            handle.close()
            handle, partial = None, ""
            continue
        time.sleep(poll_s)


def _newer_backups(path: Path, inode: int) -> list[Path]:
    """The backups rotated after the one with ``inode`` (the file just finished), oldest
    first; none if it is not among them (truncated in place, or rotated out)."""
    backups = backup_files(path)  # .1 (newest) ... .N
    for index, backup in enumerate(backups):
        try:
            if backup.stat().st_ino == inode:
                return list(reversed(backups[:index]))
        except FileNotFoundError:
            continue
    return []


def _replaced(path: Path, handle) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False  # between the rename and the new file: keep reading the old one
    opened = os.fstat(handle.fileno())
    return (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev) \
        or current.st_size < handle.tell()  # truncated in place


@click.command("logs")
@click.option("-f", "--follow", "follow_", is_flag=True,
              help="Keep printing new lines (Ctrl-C ends).")
@click.option("--session", "session_id", metavar="ID", help="Only lines about this session.")
@click.option("--level", metavar="L",
              help="Only this level and above: debug, info, warning, error.")
@click.option("-n", "--lines", "count", type=click.IntRange(min=0), default=40, show_default=True,
              help="How many past lines to print first.")
@pass_ctx
def logs_command(ctx: Context, follow_: bool, session_id: str | None, level: str | None,
                 count: int) -> None:
    """The daemon's log, readable (with --json: the JSON lines as they are)."""
    keep = EntryFilter(level, session_id)
    path = layout(ctx.cfg).log_path
    if path is None:
        raise CommandFailed("logging.file is empty: the daemon writes no log file", EXIT_FAILED)
    if not path.exists() and not follow_:
        raise CommandFailed(f"no log file at {path} (has orbitdockd run with this home?)",
                            EXIT_FAILED)

    def show(entry: dict[str, Any]) -> None:
        if ctx.as_json:
            click.echo(json.dumps(entry, ensure_ascii=False))
        else:
            colour = click.get_text_stream("stdout").isatty() and not os.environ.get("NO_COLOR")
            click.echo(logs.human_line(entry, date=True, colour=colour))

    try:
        handle: TextIO | None = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        handle = None
    # The tail and the follow share one read: not a line lost or repeated between them.
    complete, _, partial = (handle.read() if handle is not None else "").rpartition("\n")
    try:
        for entry in last_entries(path, complete, keep, count):
            show(entry)
        if follow_:
            for entry in follow(path, ctx.cfg.logging.follow_poll_s, handle, partial):
                if keep(entry):
                    show(entry)
    except KeyboardInterrupt:
        if not follow_:
            raise
        # Ctrl-C is how -f ends (even while the tail is still printing): not an error.
    finally:
        if handle is not None:
            handle.close()


def register(group: click.Group) -> None:
    group.add_command(logs_command)
