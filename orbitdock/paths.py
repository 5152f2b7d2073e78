"""Where a daemon keeps its files and sockets, derived the same way by every process.

``orbitdockctl`` finds the daemon of the same ``ORBITDOCK_HOME`` without flags
because both sides derive the runtime dir (and so the ipc endpoints) from the
data dir. Several daemons with different homes therefore run side by side.
"""

from __future__ import annotations

import copy

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orbitdock.config import Config

RUNTIME_FILE = "orbitdockd.json"  # written by the daemon: pid, epoch, endpoints
LOCK_FILE = "orbitdockd.lock"  # flock-held by the one daemon of a data dir; holds its pid
DEMO_HOME = "demo"  # `orbitdockd --demo` runs on <data dir>/demo, apart from the user's own


@dataclass(frozen=True)
class Layout:
    data_dir: Path
    runtime_dir: Path
    db_path: Path
    log_path: Path | None
    request_endpoint: str
    event_endpoint: str
    codex_home: Path

    @property
    def runtime_file(self) -> Path:
        return self.data_dir / RUNTIME_FILE

    @property
    def lock_file(self) -> Path:
        return self.data_dir / LOCK_FILE


def runtime_base() -> Path:
    """Where default runtime dirs are made: ``$XDG_RUNTIME_DIR``, else the temp dir."""
    return Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())


def _default_runtime_dir(data_dir: Path) -> Path:
    # ipc paths must stay under ~100 bytes, so hash the (possibly long) data dir.
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:10]
    return runtime_base() / f"orbitdock-{os.getuid()}-{digest}"


def layout(cfg: Config) -> Layout:
    data_dir = Path(cfg.paths.data_dir).expanduser().resolve()
    runtime_dir = (
        Path(cfg.paths.runtime_dir).expanduser().resolve()
        if cfg.paths.runtime_dir
        else _default_runtime_dir(data_dir)
    )
    codex_home = Path(
        cfg.paths.codex_home or os.environ.get("CODEX_HOME") or "~/.codex"
    ).expanduser()
    log_path = data_dir / cfg.logging.file if cfg.logging.file else None
    return Layout(
        data_dir=data_dir,
        runtime_dir=runtime_dir,
        db_path=data_dir / cfg.persistence.db_file,
        log_path=log_path,
        request_endpoint=cfg.gateway.request_endpoint or f"ipc://{runtime_dir}/request.sock",
        event_endpoint=cfg.gateway.event_endpoint or f"ipc://{runtime_dir}/events.sock",
        codex_home=codex_home,
    )


def prepare_dirs(lay: Layout) -> None:
    """Create the data dir (0700) and a private (0700) runtime dir for the ipc sockets."""
    lay.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lay.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(lay.runtime_dir, 0o700)
    if lay.log_path:
        lay.log_path.parent.mkdir(parents=True, exist_ok=True)


def write_runtime_file(lay: Layout, info: dict) -> None:
    tmp = lay.runtime_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(info))
    os.replace(tmp, lay.runtime_file)


def read_runtime_file(lay: Layout) -> dict | None:
    try:
        return json.loads(lay.runtime_file.read_text())
    except (OSError, ValueError):
        return None


def demo_instead(cfg: Config) -> Config | None:
    """The demo daemon's config when no daemon serves ``cfg``'s data dir but the demo of that
    home runs (``orbitdockd --demo``): clients find it without being told its home."""
    if read_runtime_file(layout(cfg)) is not None:
        return None
    demo = copy.deepcopy(cfg)
    demo.paths.data_dir = str(Path(cfg.paths.data_dir).expanduser() / DEMO_HOME)
    info = read_runtime_file(layout(demo))
    if info is None or not _alive(int(info.get("pid", 0))):
        return None
    return demo


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
