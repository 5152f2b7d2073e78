"""Who follows what, and the daemon's stream fanned out to them as upstream frames.

A connection follows the list (``subscribe_list``) and any sessions
(``subscribe_session``). One ``Subscription`` of the link keeps a mirror of each session
some connection follows, and of the list. A connection that subscribes gets the mirror's
state as ``session_snapshot`` (or nothing, when its ``since_revision`` is the mirror's
revision of the same daemon life), then every later event in revision order, so a client
that resumes after the bridge or its own connection went away has no gap and no
duplicate, whatever happened meanwhile: the snapshot is the daemon's, not a bounded
replay buffer's.

Every frame is built once for all the connections that get it (``emit(conns, frame)``);
the link encodes it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from orbitdock.client import Subscription
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import SessionState
from orbitdock.ws import inbound, outbound
from orbitdock.ws.answers import upstream_error

Emit = Callable[[Iterable[int], dict[str, Any]], None]


@dataclass
class Follower:
    """One connection: what it follows."""

    sessions: set[str] = field(default_factory=set)
    wants_list: bool = False


class Followers:
    """The connections, what each follows, and the stream's frames for them (event-loop
    thread only). ``sub`` is the link's Subscription once it is connected."""

    def __init__(self, emit: Emit, limit: int, snapshot_target: int):
        self.emit = emit
        self.limit = limit  # ws.max_field_chars
        self.snapshot_target = snapshot_target  # ws.snapshot_target_bytes
        self.sub: Subscription | None = None
        self.conns: dict[int, Follower] = {}
        self._watchers: dict[str, set[int]] = {}  # session -> conns receiving its events
        self._awaiting: dict[str, dict[int, inbound.SubscribeSession]] = {}
        self._list_conns: set[int] = set()
        self._list_waiting: set[int] = set()
        self._list_status: dict[str, str] = {}

    # ------------------------------------------------------------ the link's calls
    def _snapshot(self, state: SessionState, epoch: str | None) -> dict[str, Any]:
        return outbound.session_snapshot(state, epoch, self.limit, self.snapshot_target)

    def attach(self, sub: Subscription) -> None:
        """The link connected: follow in ``sub`` what the connections already asked for."""
        self.sub = sub
        if self._list_conns or self._list_waiting:
            sub.watch_list()
        for sid in set(self._watchers) | set(self._awaiting):
            sub.watch_session(sid)

    def open(self, conn_id: int) -> None:
        self.conns[conn_id] = Follower()

    def close(self, conn_id: int) -> None:
        conn = self.conns.pop(conn_id, None)
        if conn is None:
            return
        self._list_conns.discard(conn_id)
        self._list_waiting.discard(conn_id)
        for sid in conn.sessions:
            self._drop_watch(sid, conn_id)

    def mirror_state(self, sid: str | None) -> Any:
        """The session's mirrored state, when synced (else None)."""
        mirror = self.sub.sessions.get(sid or "") if self.sub is not None else None
        return mirror.state if mirror is not None and mirror.synced else None

    def provider(self, sid: str | None) -> str:
        return self.known_provider(sid) or "codex"

    def known_provider(self, sid: str | None) -> str | None:
        """The session's provider, from its mirror or the list's (None: not known here)."""
        state = self.mirror_state(sid)
        if state is not None:
            return state.provider
        row = self.sub.summaries.get(sid or "") if self.sub is not None else None
        return row.provider if row is not None else None

    # ------------------------------------------------------------ subscriptions
    def subscribe_list(self, conn_id: int) -> None:
        self.conns[conn_id].wants_list = True
        if self.sub is not None and self.sub.list_synced:
            self._list_conns.add(conn_id)
            self.emit((conn_id,), outbound.sessions_list(self.sub.summaries.values()))
            return
        self._list_waiting.add(conn_id)
        if self.sub is not None and not self.sub.list_wanted:
            self.sub.watch_list()

    def subscribe_session(self, conn_id: int, msg: inbound.SubscribeSession) -> None:
        sid = msg.session_id
        self.conns[conn_id].sessions.add(sid)
        self._watchers.get(sid, set()).discard(conn_id)
        mirror = self.sub.sessions.get(sid) if self.sub is not None else None
        if mirror is not None and mirror.synced:
            self._start_stream(conn_id, msg, mirror.state, mirror.epoch)
            return
        self._awaiting.setdefault(sid, {})[conn_id] = msg
        if self.sub is not None:
            self.sub.watch_session(sid)

    def unsubscribe_session(self, conn_id: int, sid: str) -> None:
        self.conns[conn_id].sessions.discard(sid)
        self._drop_watch(sid, conn_id)

    def follow_new(self, conn_id: int, sid: str) -> None:
        """A session the connection created or resumed: it follows it from its snapshot."""
        mirror = self.sub.sessions.get(sid) if self.sub is not None else None
        if sid in self.conns[conn_id].sessions and mirror is not None and mirror.synced:
            self.emit((conn_id,), self._snapshot(mirror.state, mirror.epoch))
        else:
            self.subscribe_session(conn_id, inbound.SubscribeSession(session_id=sid))

    def _drop_watch(self, sid: str, conn_id: int) -> None:
        self._watchers.get(sid, set()).discard(conn_id)
        self._awaiting.get(sid, {}).pop(conn_id, None)
        if not self._watchers.get(sid) and not self._awaiting.get(sid):
            self._watchers.pop(sid, None)
            self._awaiting.pop(sid, None)
            if self.sub is not None:
                self.sub.unwatch_session(sid)

    def _start_stream(self, conn_id: int, msg: inbound.SubscribeSession, state: Any,
                      epoch: str | None) -> None:
        """The conn gets the snapshot it needs, then every later event."""
        same_life = msg.since_epoch is None or msg.since_epoch == epoch
        caught_up = msg.since_revision is not None and same_life and (
            msg.since_revision == state.revision)
        wants_snapshot = msg.include_snapshot or msg.since_revision is not None
        if wants_snapshot and not caught_up:
            self.emit((conn_id,), self._snapshot(state, epoch))
        self._watchers.setdefault(state.id, set()).add(conn_id)

    # ------------------------------------------------------------ the daemon's stream
    def on_applied(self, applied: list[m.Wire]) -> None:
        """What the Subscription applied in one batch, as frames to those who follow it."""
        coalesced = self._coalesce(applied)
        for index, item in enumerate(applied):
            if isinstance(item, m.SessionEvent):
                conns = self._watchers.get(item.session_id)
                if not conns:
                    continue
                state = self.sub.sessions[item.session_id].state
                if isinstance(item, m.MessageUpdated):
                    fields = coalesced.get(index)
                    if fields is not None:
                        self.emit(conns, outbound.message_updated(item, state, fields,
                                                                  self.limit))
                    continue
                for frame in outbound.session_event(item, state, self.limit):
                    self.emit(conns, frame)
            elif isinstance(item, m.SessionCreated):
                self._on_list_upsert(item.session)
            elif isinstance(item, m.SessionSnapshot):
                self._on_snapshot(item.session.id)
            elif isinstance(item, m.SessionsList):
                self._list_status = {s.id: s.status for s in item.sessions}
                self._list_conns |= self._list_waiting
                self._list_waiting.clear()
                self.emit(self._list_conns, outbound.sessions_list(item.sessions))
            elif isinstance(item, m.Error):
                self._on_snapshot_error(item)

    @staticmethod
    def _coalesce(applied: list[m.Wire]) -> dict[int, set[str]]:
        """Streaming updates of one message in one batch go out as one ``message_updated``
        (the last, carrying every field they changed): upstream resends text whole, so a
        frame per delta would cost the square of the text's length. Busy batches coalesce
        more, an idle stream still sends each delta at once."""
        last: dict[tuple[str, str], int] = {}
        fields: dict[tuple[str, str], set[str]] = {}
        for index, item in enumerate(applied):
            if isinstance(item, m.MessageUpdated):
                key = (item.session_id, item.message_id)
                last[key] = index
                fields.setdefault(key, set()).update(outbound.changed_fields(item.changes))
        return {index: fields[key] for key, index in last.items()}

    def _on_list_upsert(self, row: Any) -> None:
        was = self._list_status.get(row.id)
        self._list_status[row.id] = row.status
        self.emit(self._list_conns, outbound.session_created(row))
        if row.status == "ended" and was not in (None, "ended"):
            self.emit(self._list_conns, {"type": "session_ended", "session_id": row.id,
                                         "reason": row.end_reason or "ended"})

    def _on_snapshot(self, sid: str) -> None:
        mirror = self.sub.sessions.get(sid)
        if mirror is None or not mirror.synced:
            return
        # A resync (gap, reset, new daemon life): every follower replaces its copy.
        self.emit(self._watchers.get(sid, set()),
                  self._snapshot(mirror.state, mirror.epoch))
        for conn_id, msg in self._awaiting.pop(sid, {}).items():
            self._start_stream(conn_id, msg, mirror.state, mirror.epoch)

    def _on_snapshot_error(self, error: m.Error) -> None:
        sid = error.session_id
        if sid is None:
            return
        waiting = self._awaiting.pop(sid, {})
        followers = self._watchers.pop(sid, set())
        conns = set(waiting) | followers
        for conn_id in conns:
            conn = self.conns.get(conn_id)
            if conn is not None:
                conn.sessions.discard(sid)
        self.emit(conns, outbound.error(upstream_error(error.code, None), error.message, sid))
        if self.sub is not None:
            self.sub.unwatch_session(sid)
