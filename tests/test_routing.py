"""Requests route by declaration: every request has one answering scope, a reply type, and
a handler table that is complete; gaps and mis-routes fail when the table is built."""

from __future__ import annotations

import pytest

from actors.gateway import GatewayLoop
from actors.persistence import PersistenceActor
from actors.providers import REGISTRY
from actors.session import SessionActor
from actors.supervisor import SupervisorActor
from actors.watcher import WatcherActor
from orbitdock.connectors.base import Provider
from orbitdock.connectors.scripted import ScriptedProvider
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ErrorCode, ProtocolError
from orbitdock.protocol.routing import (ClientRequest, RequestTable, RoutingError, Scope,
                                        answers, target_session)
from orbitdock.protocol.models import SessionState

from conftest import wait_until

ANSWERING = {Scope.GATEWAY: GatewayLoop, Scope.SUPERVISOR: SupervisorActor,
             Scope.SESSION: SessionActor, Scope.WATCHER: WatcherActor,
             Scope.PERSISTENCE: PersistenceActor}


def _bare(cls: type) -> object:
    return object.__new__(cls)  # tables read handlers off the class; no start needed


def test_request_lists_are_derived_from_the_classes():
    tags = {t.__struct_config__.tag for t in m.REQUEST_TYPES}
    assert {"get_status", "create_session", "send_message", "get_codex_status"} <= tags
    assert all(issubclass(t, m.Request) for t in m.REQUEST_TYPES)
    assert len(m.BY_NAME) == len(m.ALL_TYPES)  # no tag twice


@pytest.mark.parametrize("request_type", m.REQUEST_TYPES, ids=lambda t: t.__name__)
def test_every_request_declares_scope_reply_and_codes(request_type):
    assert isinstance(request_type.scope, Scope)
    assert request_type.reply in m.REPLY_TYPES and request_type.reply is not m.Error
    assert all(isinstance(code, ErrorCode) for code in request_type.errors)
    if request_type.forward:
        assert request_type.scope is Scope.SESSION


@pytest.mark.parametrize("scope", list(ANSWERING), ids=str)
def test_each_actor_answers_its_whole_scope(scope):
    owner = _bare(ANSWERING[scope])
    forwarded = getattr(owner, "_forward", None) if scope is Scope.SESSION else None
    table = RequestTable(owner, scope, forwarded=forwarded)
    for request_type in m.REQUEST_TYPES:
        assert (request_type in table) == (request_type.scope is scope), request_type


def test_a_missing_handler_fails_when_the_table_is_built():
    class Lazy:
        @answers(m.GetStatus)
        def status(self, req):  # noqa: ANN001, ANN202
            return None

    with pytest.raises(RoutingError, match="SubscribeList"):
        RequestTable(Lazy(), Scope.GATEWAY)


def test_a_handler_for_another_scope_fails_when_the_table_is_built():
    class Confused:
        @answers(m.GetStatus, m.SubscribeList)
        def gateway(self, req):  # noqa: ANN001, ANN202
            return None

        @answers(m.SendMessage)
        def send(self, req):  # noqa: ANN001, ANN202
            return None

    with pytest.raises(RoutingError, match="SendMessage.*session"):
        RequestTable(Confused(), Scope.GATEWAY)


def test_target_session_reads_session_or_approval_id():
    assert target_session(m.SendMessage(session_id="od-1", content="x")) == "od-1"
    assert target_session(m.ApproveTool(approval_id="od-2:a3-e", decision="accept")) == "od-2"


def test_providers_register_by_name():
    assert set(REGISTRY) >= {"codex", "scripted"}
    provider = ScriptedProvider(wait_timeout_s=1.0)
    connector = provider.connector(SessionState(id="od-x", provider="scripted"))
    assert connector.provider == "scripted"


def test_a_provider_refuses_requests_it_does_not_answer():
    class Quiet(Provider):
        name = "quiet"

        def connector(self, state, *, script=None):  # noqa: ANN001, ANN201
            raise AssertionError

    with pytest.raises(ProtocolError) as caught:
        Quiet().answer(ClientRequest(b"x", m.ListModels(provider="quiet")), lambda reply: None)
    assert caught.value.code is ErrorCode.UNSUPPORTED


def test_unsupported_operation_on_a_connector_is_a_coded_error():
    connector = ScriptedProvider(wait_timeout_s=1.0).connector(
        SessionState(id="od-x", provider="scripted"))
    with pytest.raises(ProtocolError) as caught:
        connector.call("archive", None)
    assert caught.value.code is ErrorCode.UNSUPPORTED


# ------------------------------------------------------------------ through a daemon
def test_provider_scope_without_the_provider_is_unavailable(daemon):
    client = daemon.client()
    from orbitdock.client import RemoteError

    with pytest.raises(RemoteError) as caught:
        client.request(m.ListModels(provider="nope"))
    assert caught.value.code == "unavailable"
    with pytest.raises(RemoteError) as caught:
        client.request(m.CreateSession(provider="nope", cwd="/"))
    assert caught.value.code == "invalid_argument" and "provider" in caught.value.message


def test_approve_on_a_question_says_to_answer_it(daemon):
    from orbitdock.client import RemoteError

    client = daemon.client()
    sid = client.request(m.CreateSession(provider="scripted", cwd="/", script=[
        {"question": "Which color?", "options": ["red", "blue"]}])).session.id
    client.request(m.SendMessage(session_id=sid, content="ask me"))
    state = {}

    def asked() -> bool:
        state["s"] = client.request(m.SubscribeSession(session_id=sid)).session
        return bool(state["s"].approvals)

    assert wait_until(asked, 10)
    approval = state["s"].approvals[0]
    with pytest.raises(RemoteError) as caught:
        client.request(m.ApproveTool(approval_id=approval.id, decision="accept"))
    assert caught.value.code == "wrong_verb" and "Which color?" in caught.value.message
    # Nothing changed: still pending, and answering it works.
    assert client.request(m.SubscribeSession(session_id=sid)).session.approvals
    reply = client.request(m.AnswerQuestion(approval_id=approval.id,
                                            answers={approval.questions[0].id: ["red"]}))
    assert reply.outcome == "applied"
