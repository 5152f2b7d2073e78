"""Stable error codes: every failure a client can see has one of these names."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    BAD_FRAME = "bad_frame"  # not msgpack, not a map, or no usable envelope
    UNSUPPORTED_VERSION = "unsupported_version"  # envelope version we do not speak
    UNKNOWN_TYPE = "unknown_type"  # a well-formed frame naming no known request
    INVALID_FIELD = "invalid_field"  # a known request with a missing or mistyped field
    INVALID_ARGUMENT = "invalid_argument"  # a well-typed value the daemon or backend refuses
    WRONG_VERB = "wrong_verb"  # e.g. approve/deny on a question (answer it instead)
    UNSUPPORTED = "unsupported"  # this provider or session has no such operation
    TOO_LARGE = "too_large"  # frame over gateway.max_frame_bytes
    NOT_FOUND = "not_found"  # unknown session or approval
    STALE_APPROVAL = "stale_approval"  # approval already resolved or withdrawn
    INVALID_STATE = "invalid_state"  # e.g. sending to an ended session
    BACKEND_ERROR = "backend_error"  # the agent backend refused or failed the action
    UNAVAILABLE = "unavailable"  # backend binary missing or not started
    TIMEOUT = "timeout"  # an internal step did not finish in time
    SESSION_START_FAILED = "session_start_failed"  # the session's actor could not start
    INTERNAL = "internal"  # a bug: logged with a traceback


class ProtocolError(Exception):
    """A request that cannot be served; becomes an ``error`` reply."""

    def __init__(self, code: ErrorCode, message: str, session_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.session_id = session_id
