"""Ids people can type: any unique prefix of a session or approval id, and shell completion.

Resolved on the client from the session list (``subscribe_list``) and the snapshots of
the sessions with pending approvals: the daemon keeps no index of prefixes. A prefix
that matches nothing is passed on unchanged, so the daemon's own ``not_found`` (or
``stale_approval``) is what the user sees.
"""

from __future__ import annotations

import re
from typing import Iterable

import click
from click.shell_completion import CompletionItem

from orbitdock.session.approvals import ID_SEPARATOR, LIFE_SEPARATOR
from orbitdock.cli.common import EXIT_FAILED, CliErrorCode, CommandFailed, Context
from orbitdock.client import Client, find_daemon
from orbitdock.config import load
from orbitdock.protocol import messages as m
from orbitdock.protocol.models import ApprovalRequest, SessionSummary

SESSION_PREFIX = "od-"  # ids of sessions the daemon started; typing it is optional
SHORT_SESSION_CHARS = 8  # after the prefix: the short form the CLI suggests (a uuid's first group)
SHOWN_MATCHES = 20  # an ambiguous prefix lists at most this many candidates
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WHOLE_SESSION_ID = re.compile(rf"^(?:{SESSION_PREFIX})?{UUID}$")
WHOLE_APPROVAL_ID = re.compile(
    rf"^(?:{SESSION_PREFIX})?{UUID}{ID_SEPARATOR}\d+{LIFE_SEPARATOR}[0-9a-f]+$")


def _matching(ids: Iterable[str], text: str) -> list[str]:
    ids = list(ids)
    if text in ids:
        return [text]
    found = [i for i in ids if i.startswith(text)]
    return found or [i for i in ids if i.removeprefix(SESSION_PREFIX).startswith(text)]


def _one(kind: str, text: str, found: list[str]) -> str:
    if len(found) == 1:
        return found[0]
    if not found:
        return text  # let the daemon say not_found
    listed = "\n  ".join(found[:SHOWN_MATCHES])
    more = f"\n  ... and {len(found) - SHOWN_MATCHES} more" if len(found) > SHOWN_MATCHES else ""
    raise CommandFailed(f"{text!r} matches {len(found)} {kind}s; type more of it:\n  "
                        f"{listed}{more}", EXIT_FAILED, CliErrorCode.AMBIGUOUS_ID)


def sessions(request) -> list[SessionSummary]:
    return list(request(m.SubscribeList()).sessions)


def pending_approvals(request, among: Iterable[SessionSummary]) -> list[ApprovalRequest]:
    pending: list[ApprovalRequest] = []
    for s in among:
        if s.pending_approvals:
            pending += request(m.SubscribeSession(session_id=s.id)).session.approvals
    return pending


def resolve_session(ctx: Context, text: str) -> str:
    if WHOLE_SESSION_ID.match(text):
        return text  # nothing to resolve: spare the list request
    return _one("session", text, _matching((s.id for s in sessions(ctx.request)), text))


def resolve_approval(ctx: Context, text: str) -> str:
    """``<session prefix>:a<n>``, or a prefix of the whole id, or the whole id."""
    if WHOLE_APPROVAL_ID.match(text):
        return text
    session_part, sep, rest = text.partition(ID_SEPARATOR[0])
    listed = sessions(ctx.request)
    if sep:
        sid = _one("session", session_part, _matching((s.id for s in listed), session_part))
        listed = [s for s in listed if s.id == sid]
        text = f"{sid}{sep}{rest}"
    ids = [a.id for a in pending_approvals(ctx.request, listed)]
    found = _matching(ids, text)
    # `S:a1` means a1, not a1 and a10..a19: the number typed whole wins.
    whole = [i for i in found if i.partition(ID_SEPARATOR)[2].partition(LIFE_SEPARATOR)[0]
             == text.partition(ID_SEPARATOR)[2]]
    return _one("approval", text, whole if len(whole) == 1 else found)


def _completion_request(click_ctx: click.Context):
    """A short-lived requester for completion, which runs before the group's callback."""
    params = click_ctx.find_root().params
    cfg = load(params.get("config_file"), overrides={"paths.data_dir": params.get("data_dir")})
    return Client(find_daemon(cfg), timeout=cfg.client.request_timeout_s)


class _LiveId(click.ParamType):
    """An id typed by a person: resolved from a prefix, completed from the live daemon."""

    def resolve(self, obj: Context, value: str) -> str:
        raise NotImplementedError

    def items(self, request) -> list[CompletionItem]:  # noqa: ANN001
        raise NotImplementedError

    def convert(self, value, param, ctx):
        obj = ctx.find_object(Context) if ctx is not None else None
        if obj is None or ctx.resilient_parsing:
            return value
        return self.resolve(obj, value)

    def shell_complete(self, ctx, param, incomplete):
        try:
            with _completion_request(ctx) as client:
                items = self.items(client.request)
        except Exception:  # no daemon, a timeout: simply nothing to offer
            return []
        return [item for item in items if item.value.startswith(incomplete)]


class SessionId(_LiveId):
    name = "session_id"

    def resolve(self, obj: Context, value: str) -> str:
        return resolve_session(obj, value)

    def items(self, request) -> list[CompletionItem]:  # noqa: ANN001
        return [CompletionItem(s.id, help=s.display_name) for s in sessions(request)
                if s.status == "active"]


class ApprovalId(_LiveId):
    name = "approval_id"

    def resolve(self, obj: Context, value: str) -> str:
        return resolve_approval(obj, value)

    def items(self, request) -> list[CompletionItem]:  # noqa: ANN001
        return [CompletionItem(a.id, help=a.command or a.file_path or a.type)
                for a in pending_approvals(request, sessions(request))]


SESSION_ID = SessionId()
APPROVAL_ID = ApprovalId()
