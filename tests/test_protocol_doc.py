"""docs/PROTOCOL.md is generated from the message classes and kept in step with them;
every message class carries an example that decodes with it."""

from __future__ import annotations

import difflib
import subprocess
import sys

import msgspec
import pytest

from conftest import REPO
from orbitdock.protocol import codec, docgen
from orbitdock.protocol import messages as m
from orbitdock.protocol.errors import ANY_FRAME, MEANINGS, ErrorCode
from orbitdock.protocol.scopes import Scope


def test_protocol_doc_is_up_to_date():
    expected = docgen.render()
    actual = docgen.DOC_PATH.read_text() if docgen.DOC_PATH.exists() else ""
    if actual != expected:
        diff = "".join(list(difflib.unified_diff(
            actual.splitlines(True), expected.splitlines(True), "docs/PROTOCOL.md",
            "generated"))[:40])
        pytest.fail("docs/PROTOCOL.md differs from the message classes; regenerate it with "
                    f"`{docgen.REGENERATE}` and commit it. First differences:\n{diff}")


@pytest.mark.parametrize("cls", m.ALL_TYPES, ids=lambda c: c.__name__)
def test_every_message_has_an_example_that_decodes(cls):
    fields = docgen.example_fields(cls)
    required = [f.name for f in msgspec.structs.fields(cls) if f.required]
    missing = [name for name in required if name not in fields]
    assert not missing, (f"{cls.__name__} needs an `example` ClassVar (a dict of field values) "
                         f"giving at least {missing}")
    frame = {"v": 1, "type": docgen.wire_name(cls), "id": "1", **fields}
    payload = msgspec.msgpack.encode(frame)
    decoded = (codec.decode_request(payload, 1 << 30) if cls.kind == "request"
               else codec.decode_inbound(payload))
    assert type(decoded) is cls
    assert_carries(msgspec.to_builtins(decoded), msgspec.to_builtins(fields), cls.__name__)


def assert_carries(actual, given, where: str) -> None:
    """Every value the example gives is in the decoded message (defaults may be added)."""
    if isinstance(given, dict):
        for key, value in given.items():
            assert key in actual, f"{where}.{key} lost in decoding"
            assert_carries(actual[key], value, f"{where}.{key}")
    elif isinstance(given, list):
        assert len(actual) == len(given), where
        for i, (a, g) in enumerate(zip(actual, given)):
            assert_carries(a, g, f"{where}[{i}]")
    else:
        assert actual == given, where


def test_an_example_that_does_not_decode_stops_the_generator(monkeypatch):
    monkeypatch.setattr(m.SendMessage, "example", {"session_id": "not an id!", "content": ""})
    with pytest.raises(docgen.DocgenError, match="SendMessage.example does not decode"):
        docgen.render()


def test_every_request_and_error_code_is_in_the_doc():
    text = docgen.render()
    for cls in m.ALL_TYPES:
        assert f"### `{docgen.wire_name(cls)}`" in text, cls.__name__
    for code in ErrorCode:
        assert f"| `{code}` | {MEANINGS[code]}" in text.replace("\\|", "|"), code


def test_every_error_code_has_a_meaning():
    assert set(MEANINGS) == set(ErrorCode)
    assert all(text.strip() for text in MEANINGS.values())
    assert set(ANY_FRAME) <= set(ErrorCode)


def test_field_notes_and_constraints_come_from_the_classes():
    section = docgen.render().split("### `get_messages`")[1].split("\n### ")[0]
    assert "| `limit` | int | `100` | ≥ 1, ≤ 1000 |" in section
    assert f"matches `{m.SESSION_ID_PATTERN}`" in section
    decision = docgen.render().split("### `approve_tool`")[1].split("\n### ")[0]
    assert "accept \\| accept_for_session \\| decline \\| cancel" in decision


def test_the_script_says_the_doc_is_current():
    result = subprocess.run([sys.executable, str(REPO / "bin" / "gen-protocol-doc"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_new_request_class_is_documented_without_a_generator_edit(monkeypatch):
    class ArchiveProbe(m.Request, tag="archive_probe", kw_only=True):
        """Archive the session's backend thread."""

        scope = Scope.SESSION
        errors = (ErrorCode.NOT_FOUND, ErrorCode.UNSUPPORTED)
        forward = "archive"
        example = {"session_id": "od-1", "keep_days": 3}
        session_id: m.Sid
        keep_days: int = 30  # how long the backend keeps it

    tag = "archive_probe"
    monkeypatch.setattr(m, "REQUEST_TYPES", m.REQUEST_TYPES + (ArchiveProbe,))
    monkeypatch.setitem(codec._request_decoders, tag,  # what the codec builds at import
                        msgspec.msgpack.Decoder(ArchiveProbe))
    text = docgen.render()
    section = text.split(f"### `{tag}`")[1].split("\n### ")[0]
    assert f"[`{tag}`](#{tag})" in text  # listed in the requests table
    assert "Archive the session's backend thread." in section
    assert "to the provider's `archive` operation" in section
    assert "`not_found`, `unsupported`, and [any request's]" in section
    assert "| `keep_days` | int | `30` |  | how long the backend keeps it |" in section
    assert '"keep_days": 3' in section
