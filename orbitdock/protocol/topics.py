"""PUB topics. Every topic ends in a delimiter so ``s|ab|`` never prefix-matches ``s|abc|``.

A published frame is one ZeroMQ frame: the topic bytes followed directly by the
msgpack payload (one frame is 2-4x cheaper to send than a multipart message).
"""

from __future__ import annotations

DELIM = b"|"
LIST = b"l|"  # session-list upserts (session_created / session_ended)
HEARTBEAT = b"h|"  # heartbeat with the server epoch
SESSION_PREFIX = b"s|"


def session_topic(session_id: str) -> bytes:
    return SESSION_PREFIX + session_id.encode() + DELIM


def split_frame(frame: bytes) -> tuple[bytes, bytes]:
    """Split a published frame into (topic, payload)."""
    if frame[:2] == SESSION_PREFIX:
        end = frame.index(DELIM, 2) + 1
    else:
        end = 2
    return frame[:end], frame[end:]


def session_id_of(topic: bytes) -> str | None:
    if topic[:2] == SESSION_PREFIX:
        return topic[2:-1].decode()
    return None
