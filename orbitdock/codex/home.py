"""A CODEX_HOME that points codex at the scripted model server and nothing else.

The config follows reference §1 exactly: every key there is accepted by
``--strict-config`` in codex 0.169.0, and together they keep codex off the network
(plugins/apps off) while still offering the full tool set (a bundled model slug,
update_plan and request_user_input switched on).

Run codex with ``clean_env(os.environ, write_sim_codex_home(...))`` so that a
developer's real OPENAI_API_KEY, OPENAI_BASE_URL or proxy settings can neither
redirect the traffic nor leak into the child.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

MOCK_PROVIDER_ID = "mock"
MOCK_ENV_KEY = "MOCK_API_KEY"  # codex sends its value as "Authorization: Bearer <value>"
MOCK_API_KEY = "dummy"
# codex gives up on a silent stream after this; long enough for scripted holds to be
# ended by release/interrupt rather than by codex itself.
STREAM_IDLE_TIMEOUT_MS = 30_000

# Variables that would send codex to the real API or through a proxy.
SCRUBBED_ENV_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION", "OPENAI_PROJECT", "CODEX_API_KEY",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
)


def _toml_str(value: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(value)


def _under_temp_dir(path: Path) -> Path | None:
    for temp in {Path(tempfile.gettempdir()).resolve(), Path("/tmp").resolve()}:
        if path == temp or temp in path.parents:
            return temp
    return None


def user_cache_dir() -> Path:
    """orbitdock's dir in the user's cache: ``$XDG_CACHE_HOME/orbitdock`` or ~/.cache/orbitdock."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "orbitdock"


def outside_temp_dir(wanted: Path) -> Path:
    """``wanted`` itself, or, when it lies under the temp dir (where codex refuses to create
    its helper binaries), a dir named after it in the user's cache:
    ``~/.cache/orbitdock/<name>-<hash of wanted>``, the same for the same ``wanted``.

    So a clone, a data dir or a test run under /tmp still gets a working CODEX_HOME.
    """
    wanted = Path(wanted).expanduser().resolve()
    if _under_temp_dir(wanted) is None:
        return wanted
    digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:12]
    return user_cache_dir() / f"{wanted.name.lstrip('.')}-{digest}"


def sim_config_toml(base_url: str, *, model: str = "gpt-5.5") -> str:
    """The config.toml text of reference §1 for the scripted server at ``base_url``."""
    return f"""\
# Written by orbitdock.codex.home for the scripted model server; see reference §1.
model = {_toml_str(model)}
model_provider = "{MOCK_PROVIDER_ID}"
approval_policy = "on-request"
sandbox_mode = "workspace-write"
check_for_update_on_startup = false
suppress_unstable_features_warning = true

[model_providers.{MOCK_PROVIDER_ID}]
name = "Mock Responses"
base_url = {_toml_str(base_url)}
wire_api = "responses"
env_key = "{MOCK_ENV_KEY}"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = {STREAM_IDLE_TIMEOUT_MS}

[tools.update_plan]
enabled = true

[analytics]
enabled = false

[features]
plugins = false
apps = false
default_mode_request_user_input = true
"""


def write_sim_codex_home(codex_home: Path, base_url: str, *, model: str = "gpt-5.5",
                         extra_toml: str = "") -> dict[str, str]:
    """Write ``codex_home/config.toml`` for the sim and return the env vars to run codex with.

    ``extra_toml`` is appended verbatim (e.g. an ``[mcp_servers.x]`` table). Raises
    ValueError for a codex_home under the system temp dir: codex refuses to create its
    helper binaries there ("Refusing to create helper binaries under temporary dir"),
    so apply_patch and friends would silently be missing.
    """
    codex_home = Path(codex_home).expanduser().resolve()
    temp = _under_temp_dir(codex_home)
    if temp is not None:
        raise ValueError(
            f"CODEX_HOME {codex_home} is under the temp dir {temp}: codex refuses to create "
            "its helper binaries there; use a directory elsewhere (outside_temp_dir gives one)")
    codex_home.mkdir(parents=True, exist_ok=True)
    text = sim_config_toml(base_url, model=model)
    if extra_toml:
        text += "\n" + extra_toml.rstrip("\n") + "\n"
    (codex_home / "config.toml").write_text(text)
    return {"CODEX_HOME": str(codex_home), MOCK_ENV_KEY: MOCK_API_KEY}


def clean_env(base_env: Mapping[str, str] | None = None,
              extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base_env`` (default os.environ) without API/proxy variables, plus ``extra``."""
    env = dict(os.environ if base_env is None else base_env)
    for name in SCRUBBED_ENV_VARS:
        env.pop(name, None)
    env.update(extra or {})
    return env
