"""The forwarder's msgpack subset (orbitdock/claude/minipack.py) against the msgpack
library: the same bytes packed, the same values unpacked, and the daemon's own replies
(msgspec) read as msgpack reads them."""

from __future__ import annotations

import msgpack
import pytest

from orbitdock.claude import minipack
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m

VALUES = [
    None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63),
    0.0, -1.5, 3.141592653589793, 1e300, float("inf"),
    "", "a", "é" * 10, "x" * 31, "x" * 32, "x" * 255, "x" * 256, "x" * 65535, "x" * 65536,
    b"", b"\x00\xff", b"b" * 256, b"b" * 65536,
    [], [1, "two", [3.0, None]], list(range(15)), list(range(16)), list(range(65536)),
    {}, {"a": 1}, {f"k{i}": i for i in range(15)}, {f"k{i}": i for i in range(16)},
    {f"k{i}": i for i in range(65536)},
    {"v": 1, "type": "claude_hook", "id": "1-2", "event": "Stop", "payload": '{"a": 1}',
     "event_id": "1-2", "spool": False, "wait_s": 0.0},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_packs_the_bytes_msgpack_packs_and_reads_them_back(value):
    packed = minipack.packb(value)
    assert packed == msgpack.packb(value)
    assert minipack.unpackb(packed) == msgpack.unpackb(packed, raw=False)


def test_reads_what_msgpack_writes_in_other_forms():
    assert minipack.unpackb(msgpack.packb(1.5, use_single_float=True)) == 1.5  # float32
    assert minipack.unpackb(msgpack.packb((1, (2,)))) == [1, [2]]
    for value in ("x" * 40, b"y" * 40):  # str8 / bin8
        assert minipack.unpackb(msgpack.packb(value)) == value


def test_reads_the_daemons_replies_as_msgpack_does():
    replies = [m.Ack(id="1-2", result={"output": {"hookSpecificOutput": {
                   "hookEventName": "PermissionRequest",
                   "decision": {"behavior": "allow", "updatedPermissions": [{"x": 1}]}}}}),
               m.Ack(id="1-3"),
               m.Error(id="1-4", code="invalid_argument", message="bad payload: " + "é" * 300)]
    for reply in replies:
        frame = codec.encode(reply)
        assert minipack.unpackb(frame) == msgpack.unpackb(frame, raw=False)


@pytest.mark.parametrize("data", [
    b"", b"\xa5abc", b"\x92\x01", b"\xcd\x01", b"\x81\xa1a", b"\xdb\xff\xff\xff\xff",
    b"\x01\x02", msgpack.packb(msgpack.ExtType(1, b"x")), b"\xc1",
    b"\x81\x90\x01"],  # a list as a map key
    ids=["empty", "short-str", "short-array", "short-uint16", "short-map", "huge-str",
         "extra-bytes", "ext", "never-used", "unhashable-key"])
def test_refuses_what_it_cannot_read_with_valueerror(data):
    with pytest.raises(ValueError):
        minipack.unpackb(data)


def test_refuses_what_it_cannot_pack():
    with pytest.raises(TypeError):
        minipack.packb({"a": object()})
    with pytest.raises(OverflowError):
        minipack.packb(2**64)
