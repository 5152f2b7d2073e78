"""A daemon past the old socket limit: 1 500 sessions, most ended, then more, a restart, a list.

Each session actor used to own an inproc PUSH socket; at ~1 022 sessions libzmq's
default limit of 1 023 sockets per context was reached and ``create_session`` got
no reply at all. Here the context's limit is set far lower (``zmq_max_sockets``)
to show sessions no longer take any, and the ended ones are passivated, so threads
follow the live sessions, not the history.
"""

from __future__ import annotations

import time
from collections import deque

from orbitdock.protocol import messages as m

CREATED = 1_500
LIVE = 100  # sessions left running; the rest are ended
REPLY_WAIT_S = 20.0
WINDOW = 64  # requests in flight at once


def pipelined(client, requests: list[m.Request]) -> list[m.Reply]:
    """Every request answered (in flight WINDOW at a time), replies in request order."""
    todo, in_flight, replies = deque(requests), {}, {}
    order = []
    while todo or in_flight:
        while todo and len(in_flight) < WINDOW:
            request_id = client.send(todo.popleft())
            in_flight[request_id] = True
            order.append(request_id)
        reply = client.recv_reply(REPLY_WAIT_S)
        assert reply is not None, f"{len(in_flight)} requests got no reply"
        if in_flight.pop(reply.id, None):
            replies[reply.id] = reply
    return [replies[request_id] for request_id in order]


def create(client, count: int) -> list[str]:
    replies = pipelined(client, [m.CreateSession(provider="scripted", cwd=f"/w/p{n % 7}")
                                 for n in range(count)])
    assert all(isinstance(r, m.SessionSnapshot) for r in replies), replies[:3]
    return [r.session.id for r in replies]


def live_actors(client) -> int:
    return client.request(m.GetStatus()).actors


def test_sessions_past_the_old_socket_limit_are_created_ended_restarted_and_listed(
        daemon_factory, tmp_path):
    started = time.monotonic()
    env = dict(ORBITDOCK_GATEWAY__ZMQ_MAX_SOCKETS="64",  # sessions must not need any
               ORBITDOCK_SESSIONS__PASSIVATE_ENDED_AFTER_S="0.05",
               ORBITDOCK_SESSIONS__PASSIVATE_CHECK_S="0.1")
    home = tmp_path / "home"
    d = daemon_factory(home=home, **env)
    client = d.client(timeout=REPLY_WAIT_S)
    ids = create(client, CREATED)
    assert len(set(ids)) == CREATED
    ended = ids[:-LIVE]
    assert all(isinstance(r, m.Ack) for r in pipelined(
        client, [m.EndSession(session_id=sid) for sid in ended]))
    deadline = time.monotonic() + REPLY_WAIT_S
    while live_actors(client) > LIVE + 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    actors = live_actors(client)
    assert actors <= LIVE + 10, f"{actors} actors for {LIVE} live sessions"  # + fixed ones
    more = create(client, 50)  # still answered past the old limit
    assert client.request(m.SendMessage(session_id=more[-1], content="hi")) is not None
    snapshot = client.request(m.SubscribeSession(session_id=ended[0])).session  # wakes one
    assert snapshot.status == "ended"

    d.stop()
    d.start()  # same home: a cold start with 1 550 sessions in the database
    client = d.client(timeout=REPLY_WAIT_S)
    listed = {s.id for s in client.request(m.SubscribeList()).sessions}
    assert set(ids[-LIVE:]) | set(more) <= listed and not listed & set(ended)
    assert live_actors(client) <= LIVE + 50 + 10
    seen, cursor = [], {}
    while True:
        page = client.request(m.ListSessions(status="all", limit=500, **cursor))
        seen += [s.id for s in page.sessions]
        if not page.has_more:
            break
        cursor = {"before_activity": page.sessions[-1].last_activity_at,
                  "before_id": page.sessions[-1].id}
    assert len(seen) == len(set(seen)) == CREATED + 50
    assert len(create(client, 20)) == 20
    assert time.monotonic() - started < 60
