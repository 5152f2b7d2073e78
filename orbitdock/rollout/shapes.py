"""Payload shapes of rollout tool items: labels, display text and completion fields.

Split from the parser so its state machine reads on its own. Everything here
is a pure function of one payload; tool labels follow upstream OrbitDock
(Shell, Edit, MCP:<server>/<tool>, WebSearch, ViewImage).
"""

from __future__ import annotations

import shlex
from typing import Any

import orjson


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_str, _dict = text_or_none, as_dict

_LABELS = {"exec_command": "Shell", "shell": "Shell", "shell_command": "Shell",
           "local_shell_call": "Shell", "write_stdin": "Shell", "apply_patch": "Edit",
           "patch_apply": "Edit", "web_search": "WebSearch", "view_image": "ViewImage",
           "mcp_tool_call": "MCP", "tool_search_call": "ToolSearch"}
OLD_TOOL_EVENTS = ("exec_command_begin", "exec_command_end", "patch_apply_begin",
                   "patch_apply_end", "mcp_tool_call_begin", "mcp_tool_call_end",
                   "web_search_begin", "web_search_end", "view_image_tool_call",
                   "exec_approval_request", "apply_patch_approval_request",
                   "request_user_input", "elicitation_request")
ITEM_TOOLS = ("CommandExecution", "FileChange", "McpToolCall", "WebSearch")


def join_text(content: Any) -> str:
    """Text of a content array ({type: text|input_text|output_text|Text, text}) or a string."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [c if isinstance(c, str) else c.get("text") for c in content
             if isinstance(c, str) or isinstance(c, dict)]
    return "\n".join(t for t in parts if isinstance(t, str) and t)


def json_args(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str):
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def command_text(command: Any) -> str | None:
    """["bash", "-lc", "ls"] -> "ls"; other argv lists joined; strings as they are."""
    if isinstance(command, str):
        return command
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        if len(command) == 3 and command[1] in ("-c", "-lc"):
            return command[2]
        return shlex.join(command)
    return None


def changed_paths(changes: Any) -> str | None:
    return "\n".join(changes) if isinstance(changes, dict) and changes else None


def call_start(p: dict[str, Any]) -> tuple[str, str | None]:
    """(label, input) for a model-issued call item."""
    rtype, name = p.get("type"), _str(p.get("name")) or ""
    namespace = _str(p.get("namespace"))
    if namespace and namespace.startswith("mcp__"):
        return f"MCP:{namespace[5:]}/{name}", _str(p.get("arguments"))
    if name.startswith("mcp__") and name.count("__") >= 2:
        _, server, tool = name.split("__", 2)
        return f"MCP:{server}/{tool}", _str(p.get("arguments"))
    if rtype == "custom_tool_call":
        return _LABELS.get(name, name or "tool"), _str(p.get("input"))
    if rtype == "local_shell_call":
        return "Shell", command_text(_dict(p.get("action")).get("command"))
    if rtype == "tool_search_call":
        return "ToolSearch", orjson.dumps(p.get("arguments")).decode()
    args = json_args(p.get("arguments"))
    if name in ("exec_command", "shell", "shell_command"):
        return "Shell", command_text(args.get("cmd") or args.get("command"))
    return _LABELS.get(name, name or "tool"), _str(p.get("arguments"))


def _duration_ms(duration: Any) -> int | None:
    if isinstance(duration, dict):
        return int(duration.get("secs", 0)) * 1000 + int(duration.get("nanos", 0)) // 1_000_000
    return None


def _status(status: Any, is_error: bool) -> str:
    if status == "declined":
        return "declined"
    return "failed" if is_error else "completed"


def std_output(p: dict[str, Any]) -> str | None:
    return "".join(s for s in (p.get("stdout"), p.get("stderr")) if isinstance(s, str)) or None


def exec_end_fields(p: dict[str, Any]) -> dict[str, Any]:
    code = p.get("exit_code")
    error = code not in (0, None)
    output = _str(p.get("aggregated_output")) or std_output(p)
    return {"output": output, "is_error": error, "duration_ms": _duration_ms(p.get("duration")),
            "status": _status(None, error)}


def mcp_invocation(invocation: Any) -> tuple[str, str | None]:
    inv = _dict(invocation)
    server, tool = _str(inv.get("server")), _str(inv.get("tool"))
    label = f"MCP:{server}/{tool}" if server and tool else "MCP"
    args = inv.get("arguments")
    return label, orjson.dumps(args).decode() if args is not None else None


def _mcp_result(result: Any) -> tuple[str | None, bool]:
    if isinstance(result, dict) and ("Ok" in result or "Err" in result):  # older Result shape
        if "Err" in result:
            return str(result["Err"]), True
        result = result["Ok"]
    if isinstance(result, dict):
        return join_text(result.get("content")) or None, bool(result.get("isError"))
    return None, False


def mcp_end_fields(p: dict[str, Any]) -> dict[str, Any]:
    output, error = _mcp_result(p.get("result"))
    return {"output": output, "is_error": error, "duration_ms": _duration_ms(p.get("duration")),
            "status": _status(None, error)}


def item_completion(item: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """(label, input, ToolCompleted fields) for a 0.169 item_completed tool item."""
    itype, status = item.get("type"), item.get("status")
    if itype == "CommandExecution":
        error = status in ("failed", "declined") or item.get("exit_code") not in (0, None)
        return "Shell", command_text(item.get("command")), {
            "output": _str(item.get("aggregated_output")), "is_error": error,
            "duration_ms": _duration_ms(item.get("duration")), "status": _status(status, error)}
    if itype == "FileChange":
        error = status not in ("completed", None)
        return "Edit", changed_paths(item.get("changes")), {
            "output": std_output(item), "is_error": error, "status": _status(status, error)}
    if itype == "McpToolCall":
        output, error = _mcp_result(item.get("result"))
        error = error or status == "failed" or bool(item.get("error"))
        label, tool_input = mcp_invocation(item)
        return label, tool_input, {
            "output": output or _str(_dict(item.get("error")).get("message")), "is_error": error,
            "duration_ms": _duration_ms(item.get("duration")), "status": _status(status, error)}
    return "WebSearch", _str(item.get("query")), {"output": None}


def _output_exit_code(text: str) -> int | None:
    for marker in ("Process exited with code ", "Exit code: "):
        i = text.find(marker, 0, 400)
        if i != -1:
            digits = text[i + len(marker):i + len(marker) + 6].split("\n", 1)[0].strip()
            return int(digits) if digits.lstrip("-").isdigit() else None
    return None


def output_fields(p: dict[str, Any]) -> dict[str, Any]:
    """ToolCompleted fields from a *_call_output item (plain, JSON-wrapped or part list)."""
    raw = p.get("output")
    if p.get("type") == "tool_search_output":
        names = [_str(t.get("name")) for t in p.get("tools") or [] if isinstance(t, dict)]
        return {"output": ", ".join(n for n in names if n) or None}
    text = join_text(raw)
    code = None
    if text.startswith("{"):
        wrapped = json_args(text)  # older versions: {"output": ..., "metadata": {"exit_code"}}
        if "output" in wrapped:
            text = _str(wrapped.get("output")) or ""
            code = _dict(wrapped.get("metadata")).get("exit_code")
    if code is None:
        code = _output_exit_code(text)
    error = code not in (0, None)
    return {"output": text or None, "is_error": error, "status": _status(None, error)}


def questions(raw: Any) -> list[dict[str, Any]]:
    """request_user_input questions in the protocol's Question shape."""
    out = []
    for i, q in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(q, dict):
            options = [o for o in q.get("options") or [] if isinstance(o, dict)]
            out.append({"id": _str(q.get("id")) or f"q{i}",
                        "question": _str(q.get("question")) or _str(q.get("header")) or "",
                        "header": _str(q.get("header")), "options": options})
    return out
