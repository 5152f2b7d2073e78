"""Hostile frames at the ROUTER while the load runs: every one must get a coded error.

The generators cover every stage of the codec's guard (size, msgpack, envelope,
version, type, fields) plus requests that decode but name nothing that exists
(missing sessions, stale approvals). None of them is a valid state-changing
request, so the load's own results stay checkable. The fuzzer runs in its own
process with a window of frames in flight (replies cannot always be matched by
id: an undecodable frame has none), and stops after ``count`` frames or
``max_s`` seconds, whichever comes first.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections import Counter
from typing import Callable, Iterator

import msgspec
import zmq

logger = logging.getLogger(__name__)

WINDOW = 64  # frames in flight
REPLY_WAIT_S = 10.0  # at the end, how long to wait for the last replies
RESULT_WAIT_S = 30.0  # and the load run for the result after that (the sending may run late)
TOO_LARGE_EVERY = 2000  # one oversized frame per this many (each is > 1 MB)


def _deep(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"  # [[[...nil...]]]


def generators(rng: random.Random, sids: list[str], max_bytes: int) -> list[Callable[[], object]]:
    """Frame makers; a maker returns bytes or a list of bytes (a multipart frame)."""
    enc = msgspec.msgpack.encode
    sid = (lambda: rng.choice(sids)) if sids else (lambda: "od-none")
    return [
        lambda: rng.randbytes(rng.randint(0, 64)),
        lambda: b"\xc1",
        lambda: enc([1, 2, 3]),
        lambda: enc({"v": 1}),
        lambda: enc({"v": 1, "type": rng.choice(
            ["nope", "", "x" * 300, "session_delta", "heartbeat", "welcome", "ack", "error"])}),
        lambda: enc({"v": rng.choice([0, 2, 99, -1, 2**40]), "type": "get_status", "id": "v"}),
        lambda: enc({"v": 1, "type": "subscribe_session", "id": "t", "session_id": 42}),
        lambda: enc({"v": 1, "type": "subscribe_session", "id": "t",
                     "session_id": rng.choice(["../etc", "", "a" * 200, "od-\x00\u202e", " "])}),
        lambda: enc({"v": 1, "type": "send_message", "id": "t", "session_id": "od-missing",
                     "content": "hi"}),
        lambda: enc({"v": 1, "type": "send_message", "id": "t", "session_id": sid(),
                     "content": ""}),
        lambda: enc({"v": 1, "type": "approve_tool", "id": "t",
                     "approval_id": f"{sid()}:a{rng.randint(10**6, 10**7)}",
                     "decision": rng.choice(["accept", "decline", "rm -rf /", ""])}),
        lambda: enc({"v": 1, "type": "answer_question", "id": "t",
                     "approval_id": f"{sid()}:a{rng.randint(10**6, 10**7)}", "answers": [1]}),
        lambda: enc({"v": 1, "type": "get_messages", "id": "t", "session_id": sid(),
                     "limit": rng.choice([-5, 0, 10**6, 1.5, "ten"])}),
        lambda: enc({"v": 1, "type": "create_session", "id": "t", "provider": "nope", "cwd": "/"}),
        lambda: enc({"v": 1, "type": "create_session", "id": "t", "provider": "codex"}),
        lambda: enc({"v": 1, "type": rng.choice(["steer_turn", "interrupt_session",
                                                 "rename_session", "end_session"]),
                     "id": "t", "session_id": "od-missing", "content": "x", "name": "x"}),
        lambda: enc({1: 2}),
        lambda: b"\x80" * 5,
        lambda: enc({"v": 1, "type": 5}),
        lambda: enc({"v": 1, "type": "get_status", "id": [1]}),
        lambda: b"\xdb\xff\xff\xff\xffabc",  # str32 claiming 4 GB
        lambda: b"\xdf\xff\xff\xff\xff",  # map32 claiming 4 G entries
        lambda: b"\xd4\x01\x00",  # an ext type
        lambda: b"\x83\xa1v\x01\xa4type" + _deep(rng.randint(10, 5000)),
        lambda: enc({"v": 1, "type": "nope", "pad": [[[[[[[[[[[1]]]]]]]]]]]}),
        lambda: enc({"v": 1, "type": "get_status", "id": "t"})[:-1],  # truncated
        lambda: [b"a", b"b", b"c"],
    ]


def frames(rng: random.Random, sids: list[str], max_bytes: int, count: int) -> Iterator[object]:
    makers = generators(rng, sids, max_bytes)
    big = msgspec.msgpack.encode({"v": 1, "type": "get_status", "pad": "x" * (max_bytes + 1)})
    for i in range(count):
        yield big if i % TOO_LARGE_EVERY == TOO_LARGE_EVERY - 1 else rng.choice(makers)()


def fuzz_main(endpoint: str, count: int, sids: list[str], max_bytes: int, seed: int,
              max_s: float, conn) -> None:
    """Process entry: send ``count`` hostile frames, report what came back."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    codes: Counter[str] = Counter()
    result = {"sent": 0, "errors": 0, "non_error": 0, "undecodable": 0, "unanswered": 0,
              "codes": codes, "elapsed_s": 0.0, "examples": []}
    started = time.monotonic()
    deadline = started + max_s

    def take(timeout_ms: int) -> bool:
        if not sock.poll(timeout_ms):
            return False
        reply = sock.recv()
        try:
            msg = msgspec.msgpack.decode(reply)
        except msgspec.DecodeError:
            result["undecodable"] += 1
            return True
        if isinstance(msg, dict) and msg.get("type") == "error" and msg.get("code"):
            result["errors"] += 1
            codes[str(msg["code"])] += 1
        else:
            result["non_error"] += 1
            if len(result["examples"]) < 5:
                result["examples"].append(repr(msg)[:200])
        return True

    try:
        in_flight = 0
        for frame in frames(random.Random(seed), sids, max_bytes, count):
            if time.monotonic() > deadline:
                break
            while in_flight >= WINDOW:
                if take(1000):
                    in_flight -= 1
                elif time.monotonic() > deadline:
                    break
            if isinstance(frame, list):
                sock.send_multipart(frame)
            else:
                sock.send(frame)
            result["sent"] += 1
            in_flight += 1
            while in_flight and take(0):
                in_flight -= 1
        end = time.monotonic() + REPLY_WAIT_S
        while in_flight and time.monotonic() < end:
            if take(100):
                in_flight -= 1
        result["unanswered"] = in_flight
        result["elapsed_s"] = time.monotonic() - started
        result["codes"] = dict(codes)
        conn.send(("fuzz", result))
    except Exception:  # report instead of dying silently
        conn.send(("error", traceback.format_exc()))
    finally:
        sock.close(linger=0)
        ctx.term()
        conn.close()


def collect(conn) -> dict:
    """The fuzzer process's result from its end of the pipe; a failed one is marked so."""
    if conn.poll(max_wait_s := RESULT_WAIT_S + REPLY_WAIT_S):
        kind, value = conn.recv()
        if kind == "fuzz":
            return value
        logger.error("fuzzer failed: %s", value)
    else:
        logger.error("fuzzer sent no result within %.0f s", max_wait_s)
    return {"sent": 0, "errors": 0, "non_error": 0, "unanswered": 0, "undecodable": 0,
            "elapsed_s": 0.0, "codes": {}, "failed": True}
