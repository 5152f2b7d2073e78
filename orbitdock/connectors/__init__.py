"""Agent backends. A connector drives one session's backend and reports BackendEvents."""
