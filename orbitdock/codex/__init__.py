"""Locating the pinned codex binary and preparing a CODEX_HOME for it."""

from orbitdock.codex.home import clean_env, write_sim_codex_home
from orbitdock.codex.install import CodexNotFound, check_codex, codex_version, find_codex

__all__ = ["CodexNotFound", "check_codex", "clean_env", "codex_version", "find_codex",
           "write_sim_codex_home"]
