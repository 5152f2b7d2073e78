"""Daemon logs: JSON lines in a rotated file, and readable lines for a person on stderr.

Every record becomes one dict (``entry``): ``ts``, ``time``, ``level``, ``logger``,
``thread``, ``msg``, plus any ``extra=`` fields (``session_id``, ``code``, ``raw`` ...)
as keys. The file always gets the dict as one JSON object per line, so
``grep '"session_id": "od-…"'`` follows one session through the daemon; stderr gets
either the same JSON (when it is not a terminal: a pipe, a service manager) or
``human_line(entry)``: time, level, logger, message, ``key=value`` extras.
``orbitdockctl logs`` reads the file back and prints it with the same ``human_line``.

Built on the standard library's handlers (``RotatingFileHandler`` for size-based
rotation) rather than structlog: every module already logs through ``logging`` with
``extra=``, and the two formatters below are all the rendering we need.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

STDERR_FORMATS = ("auto", "text", "json")
LEVELS = ("debug", "info", "warning", "error", "critical")
# The keys every entry has; everything else came from ``extra=``.
BASE_KEYS = ("ts", "time", "level", "logger", "thread", "msg", "exc")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_LEVEL_COLOURS = {"warning": "33", "error": "31", "critical": "1;31", "debug": "2"}


def record_entry(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """The record as the dict written to the log file (one JSON object per line)."""
    entry: dict[str, Any] = {
        "ts": round(record.created, 6),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
        "level": record.levelname.lower(),
        "logger": record.name,
        "thread": record.threadName,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            plain = isinstance(value, (str, int, float, bool, type(None)))
            entry[key] = value if plain else repr(value)
    if record.exc_info:
        entry["exc"] = formatter.formatException(record.exc_info)
    return entry


def level_number(name: str) -> int:
    """``"warn"``/``"WARNING"``/... -> the logging level number; ValueError otherwise."""
    name = name.strip().lower()
    name = {"warn": "warning", "fatal": "critical"}.get(name, name)
    if name not in LEVELS:
        raise ValueError(f"unknown log level {name!r} (one of {', '.join(LEVELS)})")
    return logging.getLevelName(name.upper())


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if text == "" or any(c.isspace() or c in "\"'=" for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def human_line(entry: dict[str, Any], *, date: bool = False, colour: bool = False) -> str:
    """One entry for a person: ``19:00:07 INFO  orbitdockd: message  key=value ...``.

    Local time (with the date when ``date``); the thread is left out (it is in the
    JSON); an exception's traceback follows on its own lines.
    """
    ts = entry.get("ts")
    if isinstance(ts, (int, float)):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S", time.localtime(ts))
    else:
        stamp = str(entry.get("time", "?"))
    level = str(entry.get("level", "?"))
    level_text = f"{level.upper():<7}"
    if colour and level in _LEVEL_COLOURS:
        level_text = f"\x1b[{_LEVEL_COLOURS[level]}m{level_text}\x1b[0m"
    extras = "  ".join(f"{key}={_value_text(value)}" for key, value in entry.items()
                       if key not in BASE_KEYS)
    line = f"{stamp} {level_text} {entry.get('logger', '?')}: {entry.get('msg', '')}"
    if extras:
        line += "  " + extras
    if entry.get("exc"):
        line += "\n" + str(entry["exc"])
    return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_entry(record, self), ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    def __init__(self, colour: bool = False):
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        return human_line(record_entry(record, self), colour=self.colour)


def stderr_is_text(stderr_format: str, stream: TextIO) -> bool:
    """Whether stderr gets readable lines: ``text``, or ``auto`` on a terminal."""
    if stderr_format not in STDERR_FORMATS:
        raise ValueError(f"unknown log format {stderr_format!r} "
                         f"(one of {', '.join(STDERR_FORMATS)})")
    if stderr_format == "auto":
        return stream.isatty()
    return stderr_format == "text"


def setup(level: str, log_file: Path | None, to_stderr: bool, *,
          stderr_format: str = "auto", max_bytes: int = 0, backups: int = 0,
          stream: TextIO | None = None) -> None:
    """Route the root logger to the (rotated) JSON file and, if ``to_stderr``, stderr.

    ``max_bytes`` 0 never rotates. Raises ValueError for an unknown format or level.
    """
    stream = stream or sys.stderr
    text = stderr_is_text(stderr_format, stream)  # checked even when stderr is off
    root_level = level_number(level)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        file_handler.setFormatter(JsonFormatter())
        root.addHandler(file_handler)
    if to_stderr:
        stderr_handler = logging.StreamHandler(stream)
        colour = text and stream.isatty() and not os.environ.get("NO_COLOR")
        stderr_handler.setFormatter(HumanFormatter(colour) if text else JsonFormatter())
        root.addHandler(stderr_handler)
    root.setLevel(root_level)
