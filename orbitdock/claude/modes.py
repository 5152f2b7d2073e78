"""Claude's permission modes, and what orbitdock's Codex-style autonomy values mean for
Claude: shared by direct sessions (``stream``), hook sessions (``hooks``: the mode a
terminal claude reports) and the WebSocket bridge."""

from __future__ import annotations

# Claude's own permission modes (claude 2.1.332 `--permission-mode` choices, and
# "default", which -p reports when none is given). "auto" needs Anthropic's classifier.
PERMISSION_MODES = ("default", "manual", "acceptEdits", "plan", "dontAsk",
                    "bypassPermissions", "auto")
# orbitdock's autonomy control speaks Codex approval policies too; for Claude they mean:
# untrusted / on-request: ask before any tool that needs permission (default);
# on-failure: edits in the project are accepted, commands still ask (acceptEdits);
# never: never ask (bypassPermissions: every tool runs).
AUTONOMY_TO_MODE = {"untrusted": "default", "on-request": "default",
                    "on-failure": "acceptEdits", "never": "bypassPermissions"}
DEFAULT_MODE = "default"


def permission_mode_for(approval_policy: str | None) -> str | None:
    """The Claude permission mode an orbitdock approval policy means (None: not a value
    Claude or orbitdock knows)."""
    if approval_policy is None:
        return DEFAULT_MODE
    if approval_policy in PERMISSION_MODES:
        return approval_policy
    return AUTONOMY_TO_MODE.get(approval_policy)


def allowed_policies() -> tuple[str, ...]:
    return PERMISSION_MODES + tuple(AUTONOMY_TO_MODE)
