"""Git branch and repository root for a session's cwd, without running git.

Spawning ``git`` per session costs milliseconds and a process; reading
``.git/HEAD`` costs microseconds. The directory walk (the only part that
touches several paths) is cached per cwd; the branch is re-read only when the
HEAD file's mtime changes, so a ``git switch`` shows up on the next lookup.
Linked worktrees (a ``.git`` *file* pointing into ``<main>/.git/worktrees/x``)
resolve their repository root to the main checkout, as upstream does, so
worktree sessions group under one project.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GitInfo:
    branch: str | None  # None when HEAD is detached (see ``head``)
    head: str | None  # commit id when detached
    toplevel: str  # the checkout (worktree) containing cwd
    repository_root: str  # the main checkout; equals toplevel unless a linked worktree
    is_worktree: bool

    @property
    def project_name(self) -> str:
        return os.path.basename(self.repository_root.rstrip("/")) or self.repository_root


@dataclass(slots=True)
class _Dirs:
    gitdir: str
    toplevel: str
    repository_root: str
    head_mtime_ns: int = -1
    branch: str | None = None
    head: str | None = None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(4096).strip()
    except OSError:
        return None


def _locate(cwd: str) -> _Dirs | None:
    """Walk up from cwd to the first ``.git`` (directory, or worktree/submodule file)."""
    path = os.path.abspath(cwd)
    while True:
        dotgit = os.path.join(path, ".git")
        # A .git directory without HEAD is debris (e.g. a sandbox placeholder), not a repo.
        if os.path.isdir(dotgit) and os.path.isfile(os.path.join(dotgit, "HEAD")):
            return _Dirs(gitdir=dotgit, toplevel=path, repository_root=path)
        if os.path.isfile(dotgit):
            text = _read_text(dotgit) or ""
            if not text.startswith("gitdir:"):
                return None
            gitdir = os.path.normpath(os.path.join(path, text[len("gitdir:"):].strip()))
            root = path
            common = _read_text(os.path.join(gitdir, "commondir"))
            if common:  # a linked worktree: the common dir is <main>/.git
                common_dir = os.path.normpath(os.path.join(gitdir, common))
                root = (os.path.dirname(common_dir) if os.path.basename(common_dir) == ".git"
                        else common_dir)
            return _Dirs(gitdir=gitdir, toplevel=path, repository_root=root)
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


class GitResolver:
    """Cached cwd -> GitInfo; misses are retried after ``miss_ttl_s`` (a repo may appear)."""

    def __init__(self, miss_ttl_s: float = 30.0) -> None:
        self.miss_ttl_s = miss_ttl_s
        self._dirs: dict[str, _Dirs] = {}
        self._misses: dict[str, float] = {}

    def resolve(self, cwd: str | None) -> GitInfo | None:
        if not cwd:
            return None
        dirs = self._dirs.get(cwd)
        if dirs is None:
            missed = self._misses.get(cwd)
            if missed is not None and time.monotonic() - missed < self.miss_ttl_s:
                return None
            dirs = _locate(cwd)
            if dirs is None:
                self._misses[cwd] = time.monotonic()
                return None
            self._misses.pop(cwd, None)
            self._dirs[cwd] = dirs
        self._refresh_head(dirs)
        return GitInfo(branch=dirs.branch, head=dirs.head, toplevel=dirs.toplevel,
                       repository_root=dirs.repository_root,
                       is_worktree=dirs.repository_root != dirs.toplevel)

    @staticmethod
    def _refresh_head(dirs: _Dirs) -> None:
        head_path = os.path.join(dirs.gitdir, "HEAD")
        try:
            mtime = os.stat(head_path).st_mtime_ns
        except OSError:
            dirs.branch = dirs.head = None
            return
        if mtime == dirs.head_mtime_ns:
            return
        dirs.head_mtime_ns = mtime
        text = _read_text(head_path) or ""
        if text.startswith("ref:"):
            ref = text[4:].strip()
            dirs.branch = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref
            dirs.head = None
        else:
            dirs.branch, dirs.head = None, text or None
