"""Reading one rollout line before it is mapped: the cheap skip and the line's time.

Every line is ``{"timestamp","ordinal","type","payload"}``. Most bytes of a
rollout are in lines that never become an event, so those are recognised from
their first bytes and never decoded; the timestamp says when codex wrote the
line, which imported history keeps instead of the time of the import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Lines that never produce an event, recognised from their first bytes and skipped
# without decoding: world_state and compacted lines are large, and response_item
# messages (the biggest share of a rollout: instructions, context, repeats of
# event_msg messages) are never a message source (see the parser's docstring).
_SNIFF_SKIP = frozenset((b"world_state", b"token_usage_record", b"compacted"))
_SNIFF_SKIP_PAYLOAD = frozenset((b"message", b"reasoning"))  # of response_item lines
_SNIFF_WINDOW = 160  # codex writes "type" before "payload"; nothing is skipped otherwise
_PAYLOAD_TYPE = b',"payload":{"type":"'


def sniff_skip(line: bytes) -> bool:
    """True when the line is a known no-event line, judged from its first bytes only."""
    i = line.find(b'"type":"', 0, _SNIFF_WINDOW)
    if i == -1 or line.find(b'"payload"', 0, i) != -1:
        return False  # no top-level type up front (or it comes after the payload): decode
    j = line.find(b'"', i + 8, i + 48)
    if j == -1:
        return False
    ltype = line[i + 8:j]
    if ltype in _SNIFF_SKIP:
        return True
    if ltype != b"response_item" or not line.startswith(_PAYLOAD_TYPE, j + 1):
        return False
    k = j + 1 + len(_PAYLOAD_TYPE)
    return line[k:line.find(b'"', k, k + 32)] in _SNIFF_SKIP_PAYLOAD


def parse_time(value: Any) -> float | None:
    """ISO-8601 (``2026-11-25T12:58:46.000Z``) or epoch seconds -> epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
