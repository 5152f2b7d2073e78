"""How a session and its rows are shown: display names and bounded tool output."""

from __future__ import annotations

from orbitdock.protocol.models import SessionState

NAME_CHARS = 72  # upstream's display-name length for prompt-derived names


def output_tail(text: str | None, keep: int) -> str | None:
    """``text``, or its last ``keep`` characters after a line saying how much was cut."""
    if text is None or len(text) <= keep:
        return text
    cut = len(text) - keep
    return f"[… {cut} earlier characters not kept …]\n" + text[cut:]


def prompt_name(text: str) -> str:
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= NAME_CHARS else collapsed[:NAME_CHARS] + "…"


def display_name_of(state: SessionState) -> str:
    for candidate in (state.custom_name, state.summary, state.first_prompt):
        if candidate:
            return prompt_name(candidate)
    return state.project_name or state.id
