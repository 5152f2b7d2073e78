"""Hostile frames at the ROUTER: every one gets a coded error, nothing changes, the daemon lives."""

from __future__ import annotations

import json
import random

import msgspec
import zmq

from orbitdock.client import find_daemon, snapshot_bytes
from orbitdock.protocol import messages as m

FRAMES = 3000


def bad_frames(rng: random.Random, max_bytes: int, sid: str):
    enc = msgspec.msgpack.encode
    pool = [
        lambda: rng.randbytes(rng.randint(0, 64)),  # random bytes (mostly not msgpack)
        lambda: b"\xc1",  # reserved msgpack opcode
        lambda: enc([1, 2, 3]),  # not a map
        lambda: enc({"v": 1}),  # no type
        lambda: enc({"v": 1, "type": rng.choice(["nope", "", "x" * 300, "session_delta"])}),
        lambda: enc({"v": 99, "type": "get_status", "id": "v99"}),  # wrong version
        lambda: enc({"v": 1, "type": "subscribe_session", "id": "t", "session_id": 42}),
        lambda: enc({"v": 1, "type": "subscribe_session", "id": "t", "session_id": "../etc"}),
        lambda: enc({"v": 1, "type": "send_message", "id": "t", "session_id": "od-missing",
                     "content": "hi"}),  # unknown session
        lambda: enc({"v": 1, "type": "approve_tool", "id": "t", "approval_id": f"{sid}:a999",
                     "decision": "accept"}),  # stale approval
        lambda: enc({"v": 1, "type": "get_messages", "id": "t", "session_id": sid,
                     "limit": -5}),  # out of range
        lambda: enc({"v": 1, "type": "create_session", "id": "t", "provider": "nope",
                     "cwd": "/"}),
        lambda: enc({1: 2}),  # non-string key
        lambda: b"\x80" * 5,  # trailing garbage after an empty map
        lambda: enc({"v": 1, "type": "get_status", "pad": "x" * (max_bytes + 1)}),  # too large
    ]
    for _ in range(FRAMES):
        yield rng.choice(pool)()


def test_flood_of_bad_frames_gets_coded_errors_and_changes_nothing(daemon):
    client = daemon.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/work/x")).session.id
    client.request(m.SendMessage(session_id=sid, content="before the flood"))
    import time
    time.sleep(0.3)
    before_state = snapshot_bytes(client.request(m.SubscribeSession(session_id=sid)).session)
    before_list = client.request(m.SubscribeList()).sessions

    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(find_daemon(daemon.config).request)
    max_bytes = daemon.config.gateway.max_frame_bytes
    codes: dict[str, int] = {}
    rng = random.Random(7)
    sent = 0
    for frame in bad_frames(rng, max_bytes, sid):
        raw.send(frame)
        sent += 1
        assert raw.poll(5000), f"no reply to bad frame #{sent}: {frame[:40]!r}"
        reply = msgspec.msgpack.decode(raw.recv())
        assert reply["type"] == "error", reply
        assert reply["code"] and reply["message"]
        codes[reply["code"]] = codes.get(reply["code"], 0) + 1
    # Multipart garbage is a bad frame too.
    raw.send_multipart([b"a", b"b", b"c"])
    assert raw.poll(5000)
    assert msgspec.msgpack.decode(raw.recv())["code"] == "bad_frame"
    raw.close()

    expected = {"bad_frame", "unknown_type", "invalid_field", "unsupported_version",
                "not_found", "stale_approval", "too_large"}
    assert expected <= set(codes), codes
    # Still serving, state untouched.
    status = client.request(m.GetStatus())
    gateway_level = ("bad_frame", "unknown_type", "unsupported_version", "too_large")
    assert status.frames_rejected >= sum(codes.get(k, 0) for k in gateway_level)
    after_state = snapshot_bytes(client.request(m.SubscribeSession(session_id=sid)).session)
    assert after_state == before_state
    assert client.request(m.SubscribeList()).sessions == before_list
    # Rejections were logged with the raw bytes.
    logged = [json.loads(line) for line in daemon.log_lines() if "rejected frame" in line]
    assert logged and "raw" in logged[0] and "code" in logged[0]


def _nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\x01"  # [[[...1...]]] as raw msgpack (fixarray of one)


def _map(fields: list[tuple[str, bytes]]) -> bytes:
    enc = msgspec.msgpack.encode
    return bytes((0x80 | len(fields),)) + b"".join(enc(k) + v for k, v in fields)


def test_deeply_nested_frames_in_every_position_get_answers(daemon):
    """A frame nested past msgspec's recursion limit once killed the gateway loop."""
    enc = msgspec.msgpack.encode
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.setsockopt(zmq.RCVTIMEO, 5000)
    raw.connect(find_daemon(daemon.config).request)
    answered = 0
    try:
        for depth in (10, 100, 990, 1000, 1023, 5000, 100_000):
            deep = _nested(depth)
            for fields in (
                [("v", deep), ("type", enc("get_status")), ("id", enc("n"))],
                [("v", enc(1)), ("type", deep), ("id", enc("n"))],
                [("v", enc(1)), ("type", enc("get_status")), ("id", deep)],
                [("v", enc(1)), ("type", enc("get_status")), ("id", enc("n")), ("x", deep)],
                [("v", enc(1)), ("type", enc("send_message")), ("id", enc("n")),
                 ("session_id", enc("od-x")), ("content", deep)],
                [("v", enc(1)), ("type", enc("create_session")), ("id", enc("n")),
                 ("provider", enc("scripted")), ("cwd", enc("/")), ("script", deep)],
            ):
                raw.send(_map(fields))
                reply = msgspec.msgpack.decode(raw.recv())  # an answer, whatever it is
                answered += 1
                assert reply["type"] in ("error", "server_status", "session_snapshot"), reply
    finally:
        raw.close(linger=0)
    assert answered == 42
    assert daemon.client().request(m.GetStatus()).pid > 0  # still answering


def test_error_reply_echoes_the_id_when_the_version_is_mistyped(daemon):
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.setsockopt(zmq.RCVTIMEO, 5000)
    raw.connect(find_daemon(daemon.config).request)
    try:
        for version in ("1", None, [1]):
            raw.send(msgspec.msgpack.encode({"v": version, "type": "get_status", "id": "keep"}))
            reply = msgspec.msgpack.decode(raw.recv())
            assert reply["type"] == "error" and reply["id"] == "keep", reply
    finally:
        raw.close(linger=0)
