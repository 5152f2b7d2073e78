"""RpcPeer without a process: the thread set-up gate and request deadlines."""

from __future__ import annotations

import time

import orjson

from orbitdock.codex import jsonrpc as rpc
from orbitdock.codex.rpc_peer import RpcPeer
from orbitdock.config import CodexConfig


class Peer(RpcPeer):
    def __init__(self, **config) -> None:
        super().__init__(CodexConfig(**config))
        self.sent: list[dict] = []
        self.answers: list[tuple[str, object, object]] = []

    def _send(self, line: bytes) -> None:
        self.sent.append(orjson.loads(line))

    def ask(self, method: str, tag: str, timeout: float | None = None) -> None:
        self.request(method, {"tag": tag},
                     lambda result, error: self.answers.append((tag, result, error)),
                     timeout=timeout)

    def answer(self, req: dict) -> None:
        self._dispatch(orjson.dumps({"id": req["id"], "result": {"for": req["params"]["tag"]}}))

    def sent_tags(self) -> list[str]:
        return [r["params"]["tag"] for r in self.sent]


def test_thread_setups_beyond_the_limit_wait_and_go_out_in_order():
    peer = Peer(setups_in_flight=2)
    for n in range(4):
        peer.ask("thread/start" if n % 2 == 0 else "thread/resume", f"s{n}")
    peer.ask("turn/start", "t")  # not a set-up: never waits
    assert peer.sent_tags() == ["s0", "s1", "t"]
    peer.answer(peer.sent[1])  # s1 answered: s2 goes out
    assert peer.sent_tags() == ["s0", "s1", "t", "s2"]
    assert [a[0] for a in peer.answers] == ["s1"]
    peer.answer(peer.sent[0])
    peer.answer(peer.sent[2])  # turn/start's answer frees no set-up slot
    assert peer.sent_tags() == ["s0", "s1", "t", "s2", "s3"]


def test_a_waiting_setups_deadline_starts_when_it_is_sent():
    peer = Peer(setups_in_flight=1, request_timeout_s=0.05)
    peer.ask("thread/start", "first")
    peer.ask("thread/start", "second")
    time.sleep(0.08)  # the first is overdue; the second has waited as long, unsent
    peer._expire()
    assert [(tag, err.code) for tag, _, err in peer.answers] == [("first", rpc.TIMEOUT)]
    assert peer.sent_tags() == ["first", "second"]  # its slot went to the second
    peer._expire()
    assert len(peer.answers) == 1  # the second's clock started just now
    peer.answer(peer.sent[1])
    assert peer.answers[-1][:2] == ("second", {"for": "second"})


def test_a_closed_connection_fails_the_waiting_setups_too():
    peer = Peer(setups_in_flight=1)
    peer.ask("thread/resume", "a")
    peer.ask("thread/resume", "b")
    peer._close_peer("app-server exited")
    assert [(tag, err.code) for tag, _, err in peer.answers] == \
        [("a", rpc.PROCESS_EXITED), ("b", rpc.PROCESS_EXITED)]
    assert peer._next_timeout() is None
    peer.ask("thread/start", "c")  # a fresh slot count, not the dead connection's
    assert peer.sent_tags() == ["a", "c"]
