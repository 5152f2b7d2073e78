"""Passive Codex: reading Codex rollout JSONL files into BackendEvents.

Pure pieces only (no threads, no actors); ``actors.watcher.WatcherActor`` drives them:

- ``reader.RolloutReader``: offset-based incremental reads in bounded chunks;
- ``parser.RolloutParser``: one file's lines -> BackendEvents (codex 0.169 and older);
- ``shapes``: tool payload shapes (labels, display text, completion fields);
- ``naming``: injected-context detection and prompt-derived names;
- ``git.GitResolver``: branch and repository root from ``.git`` without running git;
- ``legacy_state.load_legacy_offsets``: upstream OrbitDock's saved positions.
"""

from orbitdock.rollout.git import GitInfo, GitResolver
from orbitdock.rollout.legacy_state import load_legacy_offsets
from orbitdock.rollout.naming import is_injected_context, name_from_first_prompt
from orbitdock.rollout.parser import RolloutParser
from orbitdock.rollout.reader import ReadResult, RolloutReader

__all__ = [
    "GitInfo", "GitResolver", "ReadResult", "RolloutParser", "RolloutReader",
    "is_injected_context", "load_legacy_offsets", "name_from_first_prompt",
]
