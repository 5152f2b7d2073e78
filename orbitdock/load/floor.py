"""The raw pyzmq floor, measured in the same run: PUB -> SUB processes, no daemon.

Same machine, same number of subscriber processes and topics, same frame shape
(a ``message_updated`` with a ``content_append`` of the run's chunk size,
topic-prefixed, one frame) and the rate the daemon delivered. Measured twice:
*during* the load (``floor_main`` in its own process, competing for the same
CPUs as the daemon and the app-servers: what any PUB/SUB pair gets on this
machine at that moment) and *after* it (an idle machine). What the daemon adds
is the difference to the first.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
import uuid
from array import array

import zmq

from orbitdock.load.children import start_child
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import MessageChanges
from orbitdock.protocol.topics import session_topic, split_frame

WARM, END = b"w|", b"e|"
READY_S = 30.0
MIN_RATE, MAX_COUNT = 50.0, 200_000


def _sub(endpoint: str, conn) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.connect(endpoint)
    sock.setsockopt(zmq.SUBSCRIBE, b"s|")
    sock.setsockopt(zmq.SUBSCRIBE, END)
    sock.setsockopt(zmq.SUBSCRIBE, WARM)
    lat = array("d")
    try:
        conn.send(("ready", bool(sock.poll(int(READY_S * 1000)))))
        while True:
            if not sock.poll(int(READY_S * 1000)):
                break
            frame = sock.recv()
            if frame == END:
                break
            if frame[:2] == WARM:
                continue
            event = codec.decode_inbound(split_frame(frame)[1])
            lat.append(time.time() - event.ts)
        conn.send(("result", lat.tobytes()))
    except Exception:  # report, do not hang the tool
        conn.send(("error", traceback.format_exc()))
    finally:
        sock.close(linger=0)
        ctx.term()


def floor_main(subscribers: int, sessions: int, rate: float, seconds: float, chunk: int,
               conn) -> None:
    """Process entry: one measurement, reported as a summary over the pipe."""
    from orbitdock.load.report import summarize

    try:
        started = time.time()
        out = summarize(measure(subscribers, sessions, rate, seconds, chunk))
        out["window"] = (started, time.time())  # the tool leaves it out of its own figures
        conn.send(("floor", out))
    except Exception:  # report, do not hang the tool
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def measure(subscribers: int, sessions: int, rate: float, seconds: float,
            chunk: int) -> list[float]:
    """Latencies (s) of ``rate`` events/s for ``seconds`` to ``subscribers`` SUB processes."""
    rate = max(MIN_RATE, rate)
    count = int(min(MAX_COUNT, rate * seconds))
    tmp = tempfile.mkdtemp(prefix="orbitdock-floor-")
    endpoint = f"ipc://{tmp}/floor.sock"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, 20_000)
    pub.bind(endpoint)
    procs, conns = [], []
    try:
        for _ in range(subscribers):
            proc, parent = start_child(_sub, endpoint)
            procs.append(proc)
            conns.append(parent)
        deadline = time.monotonic() + READY_S
        waiting = list(conns)
        while waiting and time.monotonic() < deadline:
            pub.send(WARM)
            waiting = [c for c in waiting if not (c.poll(0.02) and c.recv()[0] == "ready")]
        topics = [session_topic(f"od-{uuid.uuid4()}") for _ in range(max(1, sessions))]
        event = m.MessageUpdated(session_id="", rev=0, message_id="x:m1",
                                 changes=MessageChanges(content_append="x" * chunk))
        buf = bytearray()
        period, next_at = 1.0 / rate, time.perf_counter()
        for i in range(count):
            next_at += period
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            topic = topics[i % len(topics)]
            event.session_id, event.rev, event.ts = topic[2:-1].decode(), i + 1, time.time()
            buf[:] = topic
            codec.encode_into(event, buf, len(topic))
            pub.send(buf)
        time.sleep(0.2)
        pub.send(END)
        out = array("d")
        for conn in conns:
            if conn.poll(READY_S):
                kind, value = conn.recv()
                if kind == "result":
                    part = array("d")
                    part.frombytes(value)
                    out.extend(part)
        return list(out)
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        pub.close(linger=0)
        ctx.term()
        shutil.rmtree(tmp, ignore_errors=True)
