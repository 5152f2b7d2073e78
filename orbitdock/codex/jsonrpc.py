"""JSON-RPC 2.0 framing for ``codex app-server`` over stdio (pure: no I/O, no threads).

One JSON object per line in both directions. The server omits ``"jsonrpc"`` and
accepts messages with or without it, so we omit it too. A line that is not a
JSON object, or that fits none of the three shapes, is logged with its raw
(truncated) text and skipped: one bad line from the child must never take a
whole process (and every session it hosts) down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

logger = logging.getLogger(__name__)

RAW_LOG_CHARS = 300  # how much of an unparseable line goes into the log


@dataclass(slots=True, frozen=True)
class RpcError:
    """A JSON-RPC error object (from codex, or made up locally for timeouts/exits)."""

    code: int
    message: str
    data: Any = None

    @classmethod
    def from_obj(cls, obj: Any) -> "RpcError":
        if isinstance(obj, dict):
            return cls(int(obj.get("code", 0) or 0), str(obj.get("message", "")), obj.get("data"))
        return cls(0, str(obj))


# Local error codes (JSON-RPC reserves -32000..-32099 for implementation errors).
TIMEOUT = -32050  # no response within the request's deadline
PROCESS_EXITED = -32051  # the app-server went away with the request in flight
NO_SUCH_THREAD = -32052  # a server request for a thread no session hosts


@dataclass(slots=True, frozen=True)
class Response:
    id: int | str
    result: Any = None
    error: RpcError | None = None


@dataclass(slots=True, frozen=True)
class Notification:
    method: str
    params: dict[str, Any]


@dataclass(slots=True, frozen=True)
class ServerRequest:
    """A request *from* codex (approvals, questions) that blocks until we reply."""

    id: int | str
    method: str
    params: dict[str, Any]


Message = Response | Notification | ServerRequest


def _line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


def encode_request(req_id: int, method: str, params: dict[str, Any] | None) -> bytes:
    obj: dict[str, Any] = {"id": req_id, "method": method}
    if params is not None:
        obj["params"] = params
    return _line(obj)


def encode_notification(method: str, params: dict[str, Any] | None = None) -> bytes:
    obj: dict[str, Any] = {"method": method}
    if params is not None:
        obj["params"] = params
    return _line(obj)


def encode_result(req_id: int | str, result: Any) -> bytes:
    return _line({"id": req_id, "result": result})


def encode_error(req_id: int | str, code: int, message: str) -> bytes:
    return _line({"id": req_id, "error": {"code": code, "message": message}})


def raw_preview(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if len(text) <= RAW_LOG_CHARS:
        return text
    return text[:RAW_LOG_CHARS] + f"...(+{len(text) - RAW_LOG_CHARS})"


def parse_line(raw: bytes | str, *, source: str = "app-server") -> Message | None:
    """Classify one line; ``None`` (after a warning) for anything unusable."""
    text = raw.strip() if isinstance(raw, (bytes, str)) else raw
    if not text:
        return None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        logger.warning("%s: skipping non-JSON line (%s): %s", source, exc, raw_preview(raw))
        return None
    if not isinstance(obj, dict):
        logger.warning("%s: skipping non-object line: %s", source, raw_preview(raw))
        return None
    method = obj.get("method")
    has_id = "id" in obj and isinstance(obj["id"], (int, str)) and not isinstance(obj["id"], bool)
    params = obj.get("params")
    if params is None:
        params = {}
    if isinstance(method, str):
        if not isinstance(params, dict):
            logger.warning("%s: skipping %s with non-object params: %s", source, method,
                           raw_preview(raw))
            return None
        if has_id:
            return ServerRequest(obj["id"], method, params)
        return Notification(method, params)
    if has_id and ("result" in obj or "error" in obj):
        err = obj.get("error")
        error = RpcError.from_obj(err) if err is not None else None
        return Response(obj["id"], obj.get("result"), error)
    logger.warning("%s: skipping line that is neither request, response nor notification: %s",
                   source, raw_preview(raw))
    return None


class LineBuffer:
    """Splits a byte stream into lines; keeps the unterminated tail for the next chunk.

    Pieces of a long line are kept in a list (not re-concatenated per chunk), so a
    multi-megabyte ``aggregatedOutput`` line costs linear time.
    """

    __slots__ = ("_pieces",)

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\n" not in chunk:
            if chunk:
                self._pieces.append(chunk)
            return []
        first, *rest = chunk.split(b"\n")
        self._pieces.append(first)
        lines = [b"".join(self._pieces)]
        *middle, tail = rest
        lines.extend(middle)
        self._pieces = [tail] if tail else []
        return lines

    def flush(self) -> bytes:
        """The truncated tail at EOF (a line the child never finished)."""
        tail, self._pieces = b"".join(self._pieces), []
        return tail
