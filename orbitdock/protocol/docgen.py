"""docs/PROTOCOL.md, generated from the message classes (run ``bin/gen-protocol-doc``).

Everything said about one message is read from its class in
``orbitdock.protocol.messages``: its wire name, fields (types, defaults and
constraints from msgspec's type info, notes from the field's trailing comment),
docstring, declared ``scope``, ``reply``, ``errors``, ``forward`` and ``example``.
Nested shapes (``orbitdock.protocol.models``) are found by walking those fields;
error codes come from ``orbitdock.protocol.errors.MEANINGS``. A new message
class is documented by being written: nothing here names one, except the topic
of an event that is not a session's (``EVENT_TOPICS``).

``tests/test_protocol_doc.py`` regenerates the text in memory and compares it
with the file, and decodes every example with its class.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
from pathlib import Path
from typing import Any, Iterator

import msgspec

from orbitdock import PROTOCOL_VERSION
from orbitdock.config import Config
from orbitdock.protocol import codec
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ANY_FRAME, MEANINGS, ErrorCode, ProtocolError
from orbitdock.protocol.scopes import Scope
from orbitdock.protocol.topics import HEARTBEAT, LIST, SESSION_PREFIX

REPO = Path(__file__).resolve().parents[2]
DOC_PATH = REPO / "docs" / "PROTOCOL.md"
REGENERATE = "bin/gen-protocol-doc"

# The topic of each event that is not one session's (those go to ``s|<session_id>|``).
EVENT_TOPICS: dict[type, str] = {
    m.SessionCreated: f"`{LIST.decode()}`",
    m.Heartbeat: f"`{HEARTBEAT.decode()}` (and first on every connection: the XPUB welcome "
                 "message)",
    m.Welcome: "the topic just subscribed to",
}
EXAMPLE_REQUEST_ID = "7"
ENVELOPE = ("v", "id")  # on every message; documented once, left out of the field tables
WIDTH = 96  # an example frame longer than this is printed one field per line


class DocgenError(Exception):
    """A message class the generator cannot document (says what to add)."""


# ------------------------------------------------------------------ reading the classes
def wire_name(cls: type) -> str:
    return cls.__struct_config__.tag


def source_comments(cls: type) -> dict[str, str]:
    """``name: ...  # note`` and ``NAME = ...  # note`` lines of a class body, by name,
    the nearest class of the MRO first (a subclass's note wins)."""
    notes: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ not in ("builtins", "msgspec", "enum"):
            notes.update(own_comments(klass))
    return notes


@functools.cache
def own_comments(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    notes = {}
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        code = lines[tok.start[0] - 1][:tok.start[1]]
        match = re.match(r"\s+(\w+)\s*[:=]", code)
        text = tok.string.lstrip("#").strip()
        if match and not text.startswith(("noqa", "type:")):
            notes[match.group(1)] = text
    return notes


def docstring(cls: type) -> str:
    """The class's own docstring, its reST literals as Markdown code."""
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc).replace("``", "`") if doc else ""


def example_fields(cls: type) -> dict[str, Any]:
    """The class's own example (an inherited one describes another message); a request
    whose one required field is ``session_id`` needs none (a new forwarded session command
    is its message class, its provider operation, its CLI command and its test)."""
    own = dict(cls.__dict__.get("example") or {})
    if own or not issubclass(cls, m.Request):
        return own
    required = [f.name for f in msgspec.structs.fields(cls) if f.required]
    return {"session_id": m.EXAMPLE_SESSION_ID} if required == ["session_id"] else own


def example_frame(cls: type[m.Wire]) -> dict[str, Any]:
    """The example as the msgpack map on the wire, checked by decoding it with the codec.

    A request shows what a client sends (envelope + the example's fields); a reply or
    an event what the daemon's codec writes for it (every field).
    """
    fields = example_fields(cls)
    request_id = None if cls.kind == "event" else EXAMPLE_REQUEST_ID
    frame = {"v": PROTOCOL_VERSION, "type": wire_name(cls), "id": request_id, **fields}
    try:
        if cls.kind == "request":
            decoded = codec.decode_request(msgspec.msgpack.encode(frame), 1 << 30)
        else:
            decoded = codec.decode_inbound(msgspec.msgpack.encode(frame))
            frame = msgspec.msgpack.decode(codec.encode(decoded))
    except (ProtocolError, msgspec.ValidationError) as exc:
        raise DocgenError(f"{cls.__name__}.example does not decode ({exc}): give it an "
                          "`example` ClassVar with a valid value for every required field"
                          ) from None
    if type(decoded) is not cls:
        raise DocgenError(f"{cls.__name__}.example decodes as {type(decoded).__name__}")
    return frame


def nested_structs(cls: type) -> Iterator[type]:
    """Struct types inside ``cls``'s fields, depth first, in field order."""

    def walk(t: msgspec.inspect.Type) -> Iterator[type]:
        if isinstance(t, msgspec.inspect.StructType):
            yield t.cls
        for attr in ("types", "item_type", "key_type", "value_type", "item_types"):
            inner = getattr(t, attr, None)
            for sub in inner if isinstance(inner, tuple) else (inner,) if inner else ():
                yield from walk(sub)

    for field in msgspec.inspect.type_info(cls).fields:
        yield from walk(field.type)


def models_used() -> list[type]:
    found: list[type] = []

    def visit(cls: type) -> None:
        for sub in nested_structs(cls):
            if sub not in found:
                found.append(sub)
                visit(sub)

    for cls in m.ALL_TYPES:
        visit(cls)
    return found


# ------------------------------------------------------------------ rendering pieces
def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower().replace(" ", "-"))


def link(cls: type) -> str:
    name = wire_name(cls) if issubclass(cls, m.Wire) else cls.__name__
    return f"[`{name}`](#{anchor(name)})"


def type_name(t: msgspec.inspect.Type) -> str:
    i = msgspec.inspect
    if isinstance(t, i.StructType):
        return link(t.cls)
    if isinstance(t, i.UnionType):
        return " | ".join(type_name(s) for s in t.types)
    if isinstance(t, i.ListType):
        return f"list[{type_name(t.item_type)}]"
    if isinstance(t, i.DictType):
        return f"map[{type_name(t.key_type)}, {type_name(t.value_type)}]"
    if isinstance(t, i.NoneType):
        return "nil"
    if isinstance(t, i.LiteralType):
        return " | ".join(json.dumps(v) for v in t.values)
    if isinstance(t, i.EnumType):
        return " | ".join(json.dumps(member.value) for member in t.cls)
    return {i.StrType: "str", i.IntType: "int", i.FloatType: "float", i.BoolType: "bool",
            i.AnyType: "any"}.get(type(t), type(t).__name__.removesuffix("Type").lower())


CONSTRAINTS = (("pattern", "matches `{}`"), ("min_length", "length ≥ {}"),
               ("max_length", "length ≤ {}"), ("ge", "≥ {}"), ("gt", "> {}"), ("le", "≤ {}"),
               ("lt", "< {}"), ("multiple_of", "multiple of {}"))


def constraints(t: msgspec.inspect.Type) -> list[str]:
    found = [text.format(getattr(t, attr)) for attr, text in CONSTRAINTS
             if getattr(t, attr, None) is not None]
    for sub in getattr(t, "types", ()):  # e.g. int | None: the int's bounds
        found.extend(constraints(sub))
    return found


def default_text(field: msgspec.structs.FieldInfo) -> str:
    if field.required:
        return "required"
    if field.default is msgspec.UNSET:
        return "absent (unchanged)"
    value = field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
    return f"`{json.dumps(msgspec.to_builtins(value))}`"


def field_table(cls: type, skip: tuple[str, ...] = ()) -> list[str]:
    notes = source_comments(cls)
    infos = {f.name: f for f in msgspec.inspect.type_info(cls).fields}
    rows = ["| field | type | default | constraints | notes |", "|---|---|---|---|---|"]
    for field in msgspec.structs.fields(cls):
        if field.name in skip:
            continue
        info = infos[field.name]
        rows.append("| " + " | ".join(cell(text) for text in (
            f"`{field.encode_name}`", type_name(info.type), default_text(field),
            ", ".join(constraints(info.type)), notes.get(field.name, ""))) + " |")
    if len(rows) == 2:
        return ["No fields besides the envelope."]
    return rows


def pretty_json(value: Any, indent: int = 0, used: int = 0) -> str:
    """JSON on one line when it fits in ``WIDTH``, else one member per line (recursively)."""
    text = json.dumps(value, ensure_ascii=False)
    if indent + used + len(text) <= WIDTH or not isinstance(value, (dict, list)) or not value:
        return text
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {pretty_json(v, indent + 2, len(json.dumps(k)) + 3)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + pretty_json(v, indent + 2, 1) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def json_block(frame: dict[str, Any]) -> list[str]:
    return ["```json", *pretty_json(frame).splitlines(), "```"]


def codes(items: tuple[ErrorCode, ...]) -> str:
    return ", ".join(f"`{code}`" for code in items)


def event_topic(cls: type) -> str:
    if cls in EVENT_TOPICS:
        return EVENT_TOPICS[cls]
    if "session_id" in cls.__struct_fields__:
        return f"`{SESSION_PREFIX.decode()}<session_id>|`"
    raise DocgenError(f"{cls.__name__}: say on which topic it is published "
                      f"(EVENT_TOPICS in {__name__})")


# ------------------------------------------------------------------ sections
def request_section(cls: type[m.Request], scope_notes: dict[str, str]) -> list[str]:
    name = wire_name(cls)
    out = [f"### `{name}`", ""]
    if docstring(cls):
        out += [docstring(cls), ""]
    scope = Scope(cls.scope)
    answerer = f"{scope} — {scope_notes.get(scope.name, '')}".rstrip(" —")
    if scope is Scope.PROVIDER and "provider" in cls.__struct_fields__:
        answerer += "; the one named in `provider`"
    elif scope is Scope.PROVIDER and getattr(cls, "provider", None):
        answerer += f"; always `{cls.provider}`"
    facts = [("answered by", answerer),
             ("reply", link(cls.reply) + " (or [`error`](#error))"),
             ("errors", codes(cls.errors) + ", and [any request's](#error-codes)"
              if cls.errors else "only [any request's](#error-codes)")]
    if cls.forward:
        when = "only while the session is active" if cls.needs_active else "in any state"
        facts.append(("forwarded", f"to the provider's `{cls.forward}` operation, {when}; "
                                   "the reply's `result` is the backend's"))
    out += ["| | |", "|---|---|"] + [f"| {k} | {cell(v)} |" for k, v in facts] + [""]
    out += field_table(cls, skip=ENVELOPE) + ["", "Example:", ""] + json_block(example_frame(cls))
    return out + [""]


def message_section(cls: type[m.Wire]) -> list[str]:
    name = wire_name(cls)
    out = [f"### `{name}`", ""]
    if docstring(cls):
        out += [docstring(cls), ""]
    if cls.kind == "reply":
        asked = [r for r in m.REQUEST_TYPES if r.reply is cls]
        if asked:
            out += ["Answers " + ", ".join(link(r) for r in asked) + ".", ""]
        elif cls is m.Error:
            out += ["Answers any request that fails; `code` is one of the "
                    "[error codes](#error-codes).", ""]
    else:
        out += [f"Topic: {event_topic(cls)}.", ""]
    out += field_table(cls, skip=ENVELOPE) + ["", "Example:", ""] + json_block(example_frame(cls))
    return out + [""]


def model_section(cls: type, documented: list[type]) -> list[str]:
    out = [f"### {cls.__name__}", ""]
    if docstring(cls):
        out += [docstring(cls), ""]
    base = next((b for b in cls.__mro__[1:] if b in documented), None)
    skip: tuple[str, ...] = ()
    if base is not None:
        skip = tuple(base.__struct_fields__)
        out += [f"Every field of {link(base)}, and:", ""]
    return out + field_table(cls, skip=skip) + [""]


def render() -> str:
    gw, client = Config().gateway, Config().client
    scope_notes = source_comments(Scope)
    models = models_used()
    out = [
        "# orbitdock wire protocol",
        "",
        f"<!-- Generated by {REGENERATE} from orbitdock/protocol/ (messages.py, models.py,",
        f"     errors.py, scopes.py); do not edit by hand: edit the classes and run it. -->",
        "",
        "Protocol version " + str(PROTOCOL_VERSION) + ". Contents: [talking to the daemon]"
        "(#talking-to-the-daemon), [keeping a mirror exact](#keeping-a-mirror-exact-clone-pattern),"
        " [requests](#requests), [replies](#replies), [events](#events), [shapes](#shapes), "
        "[error codes](#error-codes).",
        "",
        *TALKING.format(
            version=PROTOCOL_VERSION, max_frame=gw.max_frame_bytes,
            disconnect=gw.disconnect_frame_bytes, session=SESSION_PREFIX.decode(),
            list=LIST.decode(), heartbeat=HEARTBEAT.decode()).splitlines(),
        "",
        *CLONE.format(
            session=SESSION_PREFIX.decode(), list=LIST.decode(), heartbeat=HEARTBEAT.decode(),
            welcome_timeout=client.welcome_timeout_s, hb=gw.heartbeat_interval_s,
            liveness=client.heartbeat_liveness, tail=gw.tail_heartbeats,
            request_timeout=client.request_timeout_s, coalesce=gw.list_coalesce_ms).splitlines(),
        "",
        "## Requests",
        "",
        "Sent on the ROUTER; each gets exactly one reply with the same `id`. \"Answered by\" is",
        "the request's declared scope: who in the daemon answers it.",
        "",
        "| request | answered by | reply | forwarded |",
        "|---|---|---|---|",
    ]
    for cls in m.REQUEST_TYPES:
        out.append(f"| {link(cls)} | {cls.scope} | {link(cls.reply)} | "
                   f"{'`' + cls.forward + '`' if cls.forward else ''} |")
    out.append("")
    for cls in m.REQUEST_TYPES:
        out += request_section(cls, scope_notes)
    out += ["## Replies", ""]
    for cls in m.REPLY_TYPES:
        out += message_section(cls)
    out += ["## Events", "",
            "Published on the XPUB, each as one frame: the topic bytes, then the msgpack map.",
            ""]
    for cls in m.EVENT_TYPES:
        out += message_section(cls)
    if models:
        intro = inspect.cleandoc(sys.modules[models[0].__module__].__doc__ or "")
        out += ["## Shapes", "", *intro.replace("``", "`").splitlines(), ""]
    for cls in models:
        out += model_section(cls, models)
    out += ["## Error codes", "",
            "An `error` reply's `code`. Any request may get " + codes(ANY_FRAME)
            + " (the frame checks, in the order the codec makes them, and a failing "
            "handler); the codes a request may get besides are listed with it.", "",
            "| code | meaning |", "|---|---|"]
    out += [f"| `{code}` | {cell(MEANINGS[code])} |" for code in ErrorCode]
    return "\n".join(out).rstrip() + "\n"


TALKING = """\
## Talking to the daemon

`orbitdockd` listens on two ZeroMQ sockets, found in `orbitdockd.json` in its data dir
(keys `request_endpoint`, `event_endpoint`; by default `ipc://<runtime dir>/request.sock`
and `ipc://<runtime dir>/events.sock`, the runtime dir private to the user; settings
`gateway.request_endpoint` and `gateway.event_endpoint`):

- **ROUTER** (requests): connect a DEALER and send each request as one frame; the reply
  comes back as one frame. A request in more than one frame gets `bad_frame`.
- **XPUB** (events): connect a SUB and subscribe to topics. Every published frame is one
  ZeroMQ frame: the topic bytes followed directly by the msgpack payload. Topics end in `|`
  so one never prefix-matches another:
  - `{session}<session_id>|`: one session's events;
  - `{list}`: the session list (one `session_created` upsert per changed session);
  - `{heartbeat}`: heartbeats.

Every message, both ways, is a msgpack map whose envelope is
`{{"v": {version}, "type": <wire name>, "id": <string or nil>, ...fields}}`: `v` is the protocol
version, `type` the message's name below, `id` the request id a client chooses (a reply
echoes it; events carry nil). Field names are the map keys; a field left out takes its
default, a field the daemon does not know is ignored (so newer clients can talk to older
daemons); msgpack `nil` is JSON `null` in the examples below, which render msgpack maps
as JSON.

Request frames over {max_frame} bytes get `too_large` (without the request id); over
{disconnect} bytes libzmq drops the connection without a reply. A frame is checked in this
order, each failure with its own code: size, msgpack, envelope, version, type, fields.
"""

CLONE = """\
## Keeping a mirror exact (Clone pattern)

Subscribing gives live events; a snapshot gives the state they apply to. The client
library `orbitdock/client/subscription.py` does all of this; another client follows the
same rules:

1. **Welcome on subscribe.** Subscribe the SUB to the topic (`{session}<session_id>|`, or
   `{list}`). The daemon answers the subscription with a `welcome` on that topic: from then
   on nothing published there is missed. If no welcome comes within {welcome_timeout} s
   (`client.welcome_timeout_s`), go on anyway: the revision checks below catch a gap.
2. **Snapshot, then deltas.** After the welcome, ask for the snapshot: `subscribe_session`
   (reply `session_snapshot`, whose `session.revision` is the revision it reflects) or
   `subscribe_list` (reply `sessions_list` with the list revision `revision`). Events that
   arrive before the reply are buffered.
3. **Apply in order.** Every session event carries the session's `rev`, gap-free per
   session. Drop events with `rev` ≤ the mirror's revision; apply the event with
   `rev == last + 1` (the reducer is `orbitdock/session/reducer.py`, the same one the daemon
   runs); any other `rev` is a **gap** (the publisher's queue for a slow subscriber
   dropped events): keep the event, ask for a fresh snapshot, and go on from step 3 with it.
4. **`session_reset`**: the session's actor was restarted after a crash; take a fresh
   snapshot.
5. **Epoch.** Each run of the daemon has its own `epoch`. It is on every `heartbeat`, on
   `welcome`, on the snapshots and list replies, and the XPUB's welcome message (the first
   frame on every connection and reconnection, before any event) is a `heartbeat` with
   `seq` 0 on `{heartbeat}`, so a client learns of a restarted daemon before its first event.
   A mirror keeps the epoch of its snapshot and applies only events of that epoch; a new
   epoch means a fresh snapshot for every mirror of an older one.
6. **`session_tail`.** For {tail} heartbeats after a session's last event
   (`gateway.tail_heartbeats`), the daemon repeats its latest revision on the session topic.
   A mirror behind that revision lost the *end* of a burst (nothing later would reveal the
   gap) and takes a fresh snapshot.
7. **The list revision `lrev`.** `session_created` events on `{list}` carry the list
   revision `lrev`, numbered like a session's `rev`: drop `lrev` ≤ the list's revision,
   apply `lrev == last + 1` (insert or replace the summary by its `id`), ask for the list
   again on a gap or an event of another epoch. The daemon sends at most one upsert per
   session every {coalesce} ms (`gateway.list_coalesce_ms`).
8. **Liveness.** Heartbeats come every {hb} s (`gateway.heartbeat_interval_s`), with a
   sequence number `seq`; {liveness} missed (`client.heartbeat_liveness`) mean the daemon
   is gone. A request unanswered after {request_timeout} s (`client.request_timeout_s`) is
   sent again (the reply may have been lost to a restart).
"""


def main(argv: list[str] | None = None) -> int:
    """Write docs/PROTOCOL.md; with ``--check``, only say whether it is up to date."""
    args = sys.argv[1:] if argv is None else argv
    try:
        text = render()
    except DocgenError as exc:
        print(f"cannot generate {DOC_PATH.relative_to(REPO)}: {exc}", file=sys.stderr)
        return 2
    if "--check" in args:
        if DOC_PATH.exists() and DOC_PATH.read_text() == text:
            return 0
        print(f"{DOC_PATH.relative_to(REPO)} is out of date: run {REGENERATE}", file=sys.stderr)
        return 1
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH.relative_to(REPO)}")
    return 0
