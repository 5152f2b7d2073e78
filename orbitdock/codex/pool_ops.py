"""The ops ``actors.codex_pool`` posts to an app-server process; each runs on that
process's reader thread (``AppServerProcess.post``), which owns its pipes.

``fail`` is called instead of ``run`` when the process died before the op ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from orbitdock.codex import jsonrpc as rpc
from orbitdock.codex.appserver import AppServerProcess
from orbitdock.codex.mapping import model_options
from orbitdock.codex.pool_messages import ModelsReply
from orbitdock.codex.sink import ThreadSink


@dataclass(slots=True)
class Begin:
    sink: ThreadSink

    def run(self, ctx: AppServerProcess) -> None:
        self.sink.begin(ctx)

    def fail(self, reason: str) -> None:  # the pool's on_lost already covers the sink
        pass


@dataclass(slots=True)
class Recover(Begin):
    def run(self, ctx: AppServerProcess) -> None:
        self.sink.recover(ctx)


@dataclass(slots=True)
class DetachOp(Begin):
    def run(self, ctx: AppServerProcess) -> None:
        self.sink.detach(ctx)


@dataclass(slots=True)
class ModelsOp:
    reply: ModelsReply
    retried: bool = False  # re-posted once if its process died first; never loops

    def run(self, ctx: AppServerProcess) -> None:
        collected: list[dict[str, Any]] = []

        def page(result: Any, error: rpc.RpcError | None) -> None:
            if error is not None:
                self.fail(error.message)
                return
            collected.extend((result or {}).get("data") or [])
            cursor = (result or {}).get("nextCursor")
            if cursor:
                ctx.request("model/list", {"cursor": cursor}, page)
            else:
                self.reply(model_options(collected), None)

        ctx.request("model/list", {}, page)

    def fail(self, reason: str) -> None:
        self.reply(None, reason)
