"""Passive Codex: reading Codex rollout JSONL files into BackendEvents.

Pieces the actor ``actors.watcher.WatcherActor`` drives (no actor state in any of them):

- ``reader.RolloutReader``: offset-based incremental reads in bounded chunks;
- ``lines``: the cheap skip of no-event lines and each line's timestamp;
- ``parser.RolloutParser``: one file's lines -> BackendEvents (codex 0.169), with
  ``older_events.OlderVocabulary`` for the event_msg vocabulary before it;
- ``shapes``: tool payload shapes (labels, display text, completion fields);
- ``follow.FollowedFile``: one file's reader -> parser -> git/name enrichment, per batch;
- ``scan``: finding rollout files, codex's session_index.jsonl names;
- ``fsevents``: the watchdog handler thread (it only ``tell``s the actor) and the messages
  it and the actor's timer send;
- ``routes.SessionRoutes``: where each session's batches go (the supervisor first, then
  straight to the session actor once the supervisor has named it);
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
