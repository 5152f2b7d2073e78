"""Stable error codes: every failure a client can see has one of these names."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """The ``code`` of an ``error`` reply; what each means is in ``MEANINGS``."""

    BAD_FRAME = "bad_frame"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    INVALID_ARGUMENT = "invalid_argument"
    WRONG_VERB = "wrong_verb"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"
    NOT_FOUND = "not_found"
    STALE_APPROVAL = "stale_approval"
    INVALID_STATE = "invalid_state"
    BACKEND_ERROR = "backend_error"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    SESSION_START_FAILED = "session_start_failed"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    INTERNAL = "internal"


# What each code tells a client (docs/PROTOCOL.md lists them from here).
MEANINGS: dict[ErrorCode, str] = {
    ErrorCode.BAD_FRAME: "not msgpack, not a map, no usable envelope, or not exactly one "
                         "payload frame",
    ErrorCode.UNSUPPORTED_VERSION: "an envelope version the daemon does not speak",
    ErrorCode.UNKNOWN_TYPE: "a well-formed frame naming no known request",
    ErrorCode.INVALID_FIELD: "a known request with a missing or mistyped field (or a value "
                             "outside its constraints)",
    ErrorCode.INVALID_ARGUMENT: "a well-typed value the daemon or backend refuses",
    ErrorCode.WRONG_VERB: "the wrong request for the target, e.g. approve/deny on a question "
                          "(answer it instead)",
    ErrorCode.UNSUPPORTED: "this provider or session has no such operation",
    ErrorCode.TOO_LARGE: "frame over gateway.max_frame_bytes",
    ErrorCode.NOT_FOUND: "unknown session or approval",
    ErrorCode.STALE_APPROVAL: "approval already resolved or withdrawn",
    ErrorCode.INVALID_STATE: "not possible in the session's state, e.g. sending to an ended "
                             "session",
    ErrorCode.BACKEND_ERROR: "the agent backend refused or failed the action",
    ErrorCode.UNAVAILABLE: "backend binary missing or not started, or the answering actor "
                           "is not running",
    ErrorCode.TIMEOUT: "an internal step did not finish in time",
    ErrorCode.SESSION_START_FAILED: "the session's actor could not start (the message says "
                                    "why); the request was not carried out",
    ErrorCode.STORAGE_UNAVAILABLE: "the database cannot be written now (disk full, I/O "
                                   "error, read-only): new sessions and turns are refused "
                                   "until writes succeed again (get_status says why)",
    ErrorCode.INTERNAL: "a bug: logged with a traceback",
}

# Codes any request frame may get, whatever its type: the codec's checks (size, msgpack,
# envelope, version, type, fields) and a failing handler.
ANY_FRAME: tuple[ErrorCode, ...] = (
    ErrorCode.TOO_LARGE, ErrorCode.BAD_FRAME, ErrorCode.UNSUPPORTED_VERSION,
    ErrorCode.UNKNOWN_TYPE, ErrorCode.INVALID_FIELD, ErrorCode.INTERNAL,
)


class ProtocolError(Exception):
    """A request that cannot be served; becomes an ``error`` reply."""

    def __init__(self, code: ErrorCode, message: str, session_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.session_id = session_id
