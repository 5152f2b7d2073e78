"""Error codes go only through ``orbitdock.protocol.errors.ErrorCode``: no quoted literal
equal to an ErrorCode value is passed or assigned as a code anywhere in orbitdock/ or
actors/ (a raw string would not be renamed with the enum, nor be checked against it).

Precise on purpose: status names such as "timeout" or "failed" appear elsewhere as
ordinary strings; only code positions are looked at (the ``code=``/``error_code=``
keywords, a name ``code``/``error_code``/``..._codes`` being assigned, and the code
argument of ConnectorError, ProtocolError, ErrorCode, fail_op, refuse, the session
actor's _error).
"""

from __future__ import annotations

import ast

import pytest

from conftest import REPO
from orbitdock.protocol.errors import ErrorCode

CODE_VALUES = frozenset(code.value for code in ErrorCode)
# Callee name -> the position of its code argument.
CODE_ARGUMENT = {"ConnectorError": 0, "ProtocolError": 0, "ErrorCode": 0, "fail_op": 1,
                 "refuse": 1, "_error": 1}
CODE_KEYWORDS = frozenset({"code", "error_code"})
SOURCE_DIRS = ("orbitdock", "actors")


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _raw_codes(node: ast.AST) -> list[ast.Constant]:
    """String literals equal to an ErrorCode value anywhere inside ``node``."""
    return [n for n in ast.walk(node)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in CODE_VALUES]


def _is_code_name(name: str) -> bool:
    name = name.lower()
    return name in CODE_KEYWORDS or name.endswith("_code") or name.endswith("codes")


def raw_code_uses(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: "value"`` for every raw code literal in a code position of ``source``."""
    found: list[ast.Constant] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call):
            index = CODE_ARGUMENT.get(_name(node.func))
            if index is not None and len(node.args) > index:
                found += _raw_codes(node.args[index])
            for kw in node.keywords:
                if kw.arg in CODE_KEYWORDS:
                    found += _raw_codes(kw.value)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(_is_code_name(_name(t)) for t in targets):
                found += _raw_codes(node.value)
    found.sort(key=lambda c: (c.lineno, c.col_offset))
    return [f"{filename}:{c.lineno}: {c.value!r}" for c in found]


def source_files() -> list:
    return sorted(p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py")
                  if p != REPO / "orbitdock" / "protocol" / "errors.py")


def test_the_scanner_finds_raw_codes_in_every_code_position():
    sample = '''
sink.fail_op(op, "invalid_state", "stopped")
raise ConnectorError("unavailable", "no codex")
raise ProtocolError("not_found", "no such session")
out.refuse(req, "timeout", "too slow")
CommandResult(token, False, error_code="backend_error")
code = "timeout" if late else "backend_error"
CODES = {"bad_frame", "too_large"}
ErrorCode("internal")
'''
    found = raw_code_uses(sample)
    assert [f.split(": ", 1)[1] for f in found] == [
        "'invalid_state'", "'unavailable'", "'not_found'", "'timeout'", "'backend_error'",
        "'timeout'", "'backend_error'", "'bad_frame'", "'too_large'", "'internal'"], found


def test_the_scanner_leaves_other_strings_alone():
    sample = '''
core.end("timeout")
self._finish(sd, "timeout", now)
TurnCompleted(turn_id, status="failed", error="internal")
if outcome == "timeout": pass
fail_op(op, ErrorCode.TIMEOUT, "timeout")
raise ProtocolError(ErrorCode.NOT_FOUND, "not_found")
status = "failed"
'''
    assert raw_code_uses(sample) == []


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_raw_error_code_literal(path):
    found = raw_code_uses(path.read_text(), str(path.relative_to(REPO)))
    assert not found, "use ErrorCode members, not raw strings:\n" + "\n".join(found)
