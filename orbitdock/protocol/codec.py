"""The only place frames are packed and unpacked (jupyter_client's single guarded contract).

Decoding is guarded in a fixed order so each failure gets its own code:
size -> msgpack -> envelope -> version -> type -> fields.
"""

from __future__ import annotations

from typing import Union

import msgspec

from orbitdock import PROTOCOL_VERSION
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError


class _Envelope(msgspec.Struct):
    type: str
    v: int = -1
    id: str | None = None


class _RequestId(msgspec.Struct):
    """Only the id: readable even when the rest of the envelope is not."""

    id: str | None = None


_encoder = msgspec.msgpack.Encoder()
_envelope_decoder = msgspec.msgpack.Decoder(_Envelope)
_id_decoder = msgspec.msgpack.Decoder(_RequestId)
_request_decoders = {
    name: msgspec.msgpack.Decoder(cls) for name, cls in m.REQUESTS_BY_NAME.items()
}
_inbound_decoder = msgspec.msgpack.Decoder(Union[m.REPLY_TYPES + m.EVENT_TYPES])  # type: ignore[misc]
_any_decoder = msgspec.msgpack.Decoder(Union[m.ALL_TYPES])  # type: ignore[misc]


def encode(msg: m.Wire) -> bytes:
    return _encoder.encode(msg)


def encode_into(msg: m.Wire, buffer: bytearray, offset: int) -> None:
    """Encode after ``offset`` bytes of ``buffer`` (used to prefix a topic with no copy)."""
    _encoder.encode_into(msg, buffer, offset)


def peek_id(frame: bytes) -> str | None:
    """Best-effort request id of a frame that failed to decode, so the error can echo it."""
    try:
        return _id_decoder.decode(frame).id
    except Exception:  # noqa: BLE001 - whatever the frame is, the answer is "no id"
        return None


def decode_request(frame: bytes, max_bytes: int) -> m.Request:
    """Decode one request frame or raise ProtocolError with the precise code.

    Never raises anything else: a frame msgspec cannot even walk (nested past its
    recursion limit, say) is a ``bad_frame`` like any other garbage.
    """
    try:
        return _decode_request(frame, max_bytes)
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_FRAME, "frame nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise ProtocolError(ErrorCode.BAD_FRAME, f"undecodable frame: {exc!r}"[:200]) from None


def _decode_request(frame: bytes, max_bytes: int) -> m.Request:
    if len(frame) > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"frame of {len(frame)} bytes exceeds {max_bytes}")
    try:
        env = _envelope_decoder.decode(frame)
    except msgspec.ValidationError as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"bad envelope: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"not msgpack: {exc}") from None
    if env.v != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {env.v} not supported (server speaks {PROTOCOL_VERSION})",
        )
    decoder = _request_decoders.get(env.type)
    if decoder is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown request type {env.type[:64]!r}")
    try:
        return decoder.decode(frame)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(ErrorCode.INVALID_FIELD, f"{env.type}: {exc}") from None


def decode_inbound(payload: bytes) -> m.Reply | m.Event:
    """Client side: decode a reply or an event (raises msgspec errors on garbage)."""
    return _inbound_decoder.decode(payload)


def decode_any(payload: bytes) -> m.Wire:
    return _any_decoder.decode(payload)


def error_reply(exc: ProtocolError, request_id: str | None) -> bytes:
    return encode(m.Error(id=request_id, code=str(exc.code), message=exc.message,
                          session_id=exc.session_id))


_summary_decoder = msgspec.msgpack.Decoder(m.SessionSummary)


def encode_struct(value: msgspec.Struct) -> bytes:
    return _encoder.encode(value)


def decode_summary(payload: bytes | memoryview) -> m.SessionSummary:
    return _summary_decoder.decode(payload)
