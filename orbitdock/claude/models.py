"""The models Claude Code offers, as it lists them in its ``initialize`` control response.

There is no model-list call without a process: one short-lived ``claude -p`` stream-json
child is asked ``initialize`` (no API request is made) and stopped. Its ``models``
entries (``value``, ``resolvedModel``, ``displayName``, ``description``,
``supportedEffortLevels``) become orbitdock's ``ModelOption``s; ``default`` is Claude's
own default. Blocking: run it off any actor's thread.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from typing import Any

from orbitdock.claude import stream
from orbitdock.privacy import child_umask
from orbitdock.protocol.models import ModelOption


class ModelListFailed(RuntimeError):
    pass


def model_options(models: Any) -> list[ModelOption]:
    options = []
    for entry in models if isinstance(models, list) else []:
        if not isinstance(entry, dict) or not entry.get("value"):
            continue
        efforts = entry.get("supportedEffortLevels")
        options.append(ModelOption(
            id=str(entry["value"]), model=str(entry.get("resolvedModel") or entry["value"]),
            display_name=str(entry.get("displayName") or ""),
            description=str(entry.get("description") or ""),
            is_default=entry["value"] == "default",
            supported_reasoning_efforts=[str(e) for e in efforts]
            if isinstance(efforts, list) else []))
    return options


def ask_models(binary: str, *, env: dict[str, str], cwd: str, timeout_s: float) -> list[ModelOption]:
    """Start claude, ask ``initialize``, return its models; raises ModelListFailed."""
    try:
        proc = subprocess.Popen(
            [binary, "-p", "--input-format", "stream-json", "--output-format", "stream-json",
             "--verbose"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, cwd=cwd, env=env, start_new_session=True,
            umask=child_umask())
    except OSError as exc:
        raise ModelListFailed(f"cannot start claude: {exc}") from exc
    try:
        proc.stdin.write(stream.control_request("models", "initialize"))  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout_s
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        buffered = b""
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                break
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise ModelListFailed(f"claude exited ({proc.wait()}) before answering")
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                try:
                    obj = stream.parse_line(line)
                except stream.BadLine:
                    continue
                response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
                if obj["type"] == "control_response" and response.get("request_id") == "models":
                    if response.get("subtype") == "error":
                        raise ModelListFailed(f"claude refused initialize: {response.get('error')}")
                    return model_options((response.get("response") or {}).get("models"))
        raise ModelListFailed(f"claude did not answer initialize within {timeout_s} s")
    except (OSError, ValueError) as exc:
        raise ModelListFailed(f"claude: {exc}") from exc
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()  # type: ignore[union-attr]
            except OSError:
                pass

