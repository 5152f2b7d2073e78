"""The msgpack the hook forwarder needs, in the standard library: pack one request map,
unpack one reply.

For the same reason as ``orbitdock.claude.zmtp``: ``orbitdock-hook`` starts once per
Claude hook, and importing the msgpack package (its ``ext`` module pulls ``datetime``
and ``collections``) cost about three quarters of the forwarder's bare ``python -S``
start on the measuring host. The forwarder packs a flat map of strings, numbers and
booleans and unpacks the daemon's reply (maps, arrays, strings, numbers, nil), so the
format's plain types are all it needs (https://github.com/msgpack/msgpack/blob/master/
spec.md); extension types (timestamps) are refused. Everything else in orbitdock uses the
msgpack and msgspec libraries; a test checks this module against msgpack both ways.
"""

from __future__ import annotations

import struct

# type byte -> struct format of a fixed-size scalar
SCALARS = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
           0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
# type byte -> (struct format of its length, kind)
SIZED = {0xC4: (">B", "bin"), 0xC5: (">H", "bin"), 0xC6: (">I", "bin"),
         0xD9: (">B", "str"), 0xDA: (">H", "str"), 0xDB: (">I", "str"),
         0xDC: (">H", "array"), 0xDD: (">I", "array"),
         0xDE: (">H", "map"), 0xDF: (">I", "map")}
CONSTANTS = {0xC0: None, 0xC2: False, 0xC3: True}
# (type byte, struct format, lowest, highest): the first that fits packs an int
INTS = ((0xCC, ">B", 0, 0xFF), (0xD0, ">b", -0x80, 0x7F),
        (0xCD, ">H", 0, 0xFFFF), (0xD1, ">h", -0x8000, 0x7FFF),
        (0xCE, ">I", 0, 0xFFFFFFFF), (0xD2, ">i", -0x80000000, 0x7FFFFFFF),
        (0xCF, ">Q", 0, (1 << 64) - 1), (0xD3, ">q", -(1 << 63), (1 << 63) - 1))


def packb(obj: object) -> bytes:
    out = bytearray()
    _pack(obj, out)
    return bytes(out)


def _header(out: bytearray, size: int, fix_base: int | None, fix_limit: int,
            codes: tuple[int | None, int, int]) -> None:
    """A length header: the fix form below ``fix_limit``, else 8-, 16- or 32-bit."""
    if fix_base is not None and size < fix_limit:
        out.append(fix_base | size)
    elif size <= 0xFF and codes[0] is not None:
        out += struct.pack(">BB", codes[0], size)
    elif size <= 0xFFFF:
        out += struct.pack(">BH", codes[1], size)
    elif size <= 0xFFFFFFFF:
        out += struct.pack(">BI", codes[2], size)
    else:
        raise ValueError(f"too large for msgpack: {size}")


def _pack(obj: object, out: bytearray) -> None:
    if obj is None:
        out.append(0xC0)
    elif obj is True or obj is False:
        out.append(0xC3 if obj else 0xC2)
    elif isinstance(obj, int):
        if 0 <= obj <= 0x7F or -32 <= obj < 0:
            out.append(obj & 0xFF)  # positive / negative fixint
        else:
            for code, fmt, low, high in INTS:
                if low <= obj <= high:
                    out += struct.pack(">B", code) + struct.pack(fmt, obj)
                    return
            raise OverflowError(f"int out of msgpack's range: {obj}")
    elif isinstance(obj, float):
        out += struct.pack(">Bd", 0xCB, obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        _header(out, len(data), 0xA0, 32, (0xD9, 0xDA, 0xDB))
        out += data
    elif isinstance(obj, (bytes, bytearray)):
        _header(out, len(obj), None, 0, (0xC4, 0xC5, 0xC6))
        out += obj
    elif isinstance(obj, (list, tuple)):
        _header(out, len(obj), 0x90, 16, (None, 0xDC, 0xDD))
        for item in obj:
            _pack(item, out)
    elif isinstance(obj, dict):
        _header(out, len(obj), 0x80, 16, (None, 0xDE, 0xDF))
        for key, value in obj.items():
            _pack(key, out)
            _pack(value, out)
    else:
        raise TypeError(f"cannot pack {type(obj).__name__}")


def unpackb(data: bytes) -> object:
    """One msgpack value; ValueError when ``data`` is not exactly one we can read."""
    try:
        value, end = _unpack(data, 0)
    except (IndexError, TypeError, struct.error, RecursionError) as exc:
        raise ValueError(f"truncated or malformed msgpack: {exc}") from None
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the msgpack value")
    return value


def _unpack(data: bytes, at: int) -> tuple[object, int]:
    code = data[at]
    at += 1
    if code <= 0x7F:
        return code, at
    if code >= 0xE0:
        return code - 0x100, at
    if code <= 0x8F:
        return _collection(data, at, code & 0x0F, "map")
    if code <= 0x9F:
        return _collection(data, at, code & 0x0F, "array")
    if code <= 0xBF:
        return _bytes(data, at, code & 0x1F, "str")
    if code in CONSTANTS:
        return CONSTANTS[code], at
    if code in SCALARS:
        fmt = SCALARS[code]
        return struct.unpack_from(fmt, data, at)[0], at + struct.calcsize(fmt)
    if code in SIZED:
        fmt, kind = SIZED[code]
        size = struct.unpack_from(fmt, data, at)[0]
        at += struct.calcsize(fmt)
        if kind in ("str", "bin"):
            return _bytes(data, at, size, kind)
        return _collection(data, at, size, kind)
    raise ValueError(f"unsupported msgpack type {code:#04x} (extension types are not read)")


def _bytes(data: bytes, at: int, size: int, kind: str) -> tuple[object, int]:
    end = at + size
    if end > len(data):
        raise ValueError("truncated msgpack string")
    chunk = bytes(data[at:end])
    return (chunk.decode("utf-8") if kind == "str" else chunk), end


def _collection(data: bytes, at: int, size: int, kind: str) -> tuple[object, int]:
    if size > len(data) - at:  # each item takes at least one byte
        raise ValueError("truncated msgpack collection")
    if kind == "array":
        items = []
        for _ in range(size):
            item, at = _unpack(data, at)
            items.append(item)
        return items, at
    mapping = {}
    for _ in range(size):
        key, at = _unpack(data, at)
        value, at = _unpack(data, at)
        mapping[key] = value
    return mapping, at
