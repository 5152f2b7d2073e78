"""Session names from the first real prompt, and detection of injected context.

Codex writes harness text (environment, permissions, skills, AGENTS.md,
interrupt notices) into the conversation as if the user had typed it. None of
it is something the person asked for, so it must neither become a chat
message nor name a session. The marker list and the 72-character rule follow
upstream OrbitDock (upstream-orbitdock.md §3.3), so names match across the two.
"""

from __future__ import annotations

NAME_CHARS = 72  # upstream's length for prompt-derived names, "…" appended when cut

# A user-role text that *starts* with one of these is harness context, not a prompt.
INJECTED_PREFIXES = (
    "<environment_context>",
    "<user_instructions>",
    "<skills_instructions>",
    "<permissions instructions>",
    "<collaboration_mode>",
    "<skill>",
    "<turn_aborted>",
    "<user_shell_command>",
    "# agents.md instructions for",
)

# Upstream refuses to name a session from text that *contains* any of these (lowercase).
BOOTSTRAP_MARKERS = (
    "<environment_context>",
    "<permissions instructions>",
    "<collaboration_mode>",
    "<skill>",
    "<turn_aborted>",
    "the user interrupted the previous turn on purpose",
    "agents.md instructions for",
    "<user_instructions>",
    "<skills_instructions>",
)


def is_injected_context(text: str) -> bool:
    """True for harness-written user-role text (it starts with a known block tag)."""
    head = text.lstrip()[:64].lower()
    return head.startswith(INJECTED_PREFIXES)


def name_from_first_prompt(text: str) -> str | None:
    """A display name from a prompt: whitespace collapsed, 72 chars + "…"; None if unusable."""
    collapsed = " ".join(text.split())
    if not collapsed:
        return None
    lowered = collapsed.lower()
    if any(marker in lowered for marker in BOOTSTRAP_MARKERS):
        return None
    if len(collapsed) <= NAME_CHARS:
        return collapsed
    return collapsed[:NAME_CHARS] + "…"
