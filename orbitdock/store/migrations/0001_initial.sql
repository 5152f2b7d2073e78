-- 0001: initial schema. Applied by orbitdock/store/schema.py in one transaction
-- together with `PRAGMA user_version = 1`; never edit an applied migration, add 0002.
--
-- Timestamps are unix seconds (REAL). JSON columns hold UTF-8 JSON text.
-- Upstream spirit (reference §2): one sessions row carrying the live summary and
-- turn state, messages keyed by (session, sequence), an approval history, a
-- config table; legacy Swift-era columns are left out.

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    -- No default: a session row must say who runs it; a partial SaveSession for an
    -- unknown id fails loudly instead of inventing a provider.
    provider          TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'active',
    work_status       TEXT NOT NULL DEFAULT 'waiting',
    attention_reason  TEXT NOT NULL DEFAULT 'none',
    integration_mode  TEXT NOT NULL DEFAULT 'direct',
    display_name      TEXT NOT NULL DEFAULT '',
    custom_name       TEXT,
    summary           TEXT,
    first_prompt      TEXT,
    last_message      TEXT,
    project_path      TEXT,
    project_name      TEXT,
    git_branch        TEXT,
    model             TEXT,
    approval_policy   TEXT,
    sandbox_mode      TEXT,
    prompt_count      INTEGER NOT NULL DEFAULT 0,
    tool_count        INTEGER NOT NULL DEFAULT 0,
    last_tool         TEXT,
    input_tokens      INTEGER NOT NULL DEFAULT 0,
    output_tokens     INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    context_window    INTEGER NOT NULL DEFAULT 0,
    started_at        REAL NOT NULL DEFAULT 0,
    last_activity_at  REAL NOT NULL DEFAULT 0,
    ended_at          REAL,
    end_reason        TEXT,
    revision          INTEGER NOT NULL DEFAULT 0,
    current_turn_id   TEXT,
    turn_count        INTEGER NOT NULL DEFAULT 0,
    current_plan      TEXT,  -- JSON list of plan steps, or NULL
    plan_explanation  TEXT,
    current_diff      TEXT,
    last_error        TEXT,
    thread_id         TEXT,
    transcript_path   TEXT,
    total_message_count INTEGER NOT NULL DEFAULT 0,
    extra             TEXT   -- JSON object for provider-specific odds and ends
);

-- Restore and the session list read newest-first.
CREATE INDEX sessions_last_activity ON sessions(last_activity_at DESC);
CREATE INDEX sessions_status ON sessions(status);
-- A rollout file or a resumed codex thread is matched back to its session by thread id.
CREATE INDEX sessions_thread ON sessions(thread_id) WHERE thread_id IS NOT NULL;

-- Clustered on (session_id, seq): "latest N messages of a session" is one range
-- scan of adjacent pages (perf-floor §3: ~75 µs hot at 1M rows).
CREATE TABLE messages (
    session_id     TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    id             TEXT NOT NULL,
    type           TEXT NOT NULL,
    content        TEXT NOT NULL DEFAULT '',
    turn_id        TEXT,
    tool_name      TEXT,
    tool_input     TEXT,
    tool_output    TEXT,
    is_error       INTEGER NOT NULL DEFAULT 0,
    is_in_progress INTEGER NOT NULL DEFAULT 0,
    duration_ms    INTEGER,
    timestamp      REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;

-- Approval history: every request ever asked, and how it was decided.
-- Pending = decision IS NULL.
CREATE TABLE approvals (
    id                  TEXT PRIMARY KEY,  -- the approval id, "<session_id>:a<n>"
    session_id          TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    type                TEXT NOT NULL,
    method              TEXT,
    turn_id             TEXT,
    command             TEXT,
    cwd                 TEXT,
    file_path           TEXT,
    diff                TEXT,
    reason              TEXT,
    questions           TEXT NOT NULL DEFAULT '[]',  -- JSON list of Question
    available_decisions TEXT NOT NULL DEFAULT '[]',  -- JSON list of str
    payload             TEXT NOT NULL DEFAULT '{}',  -- JSON object (backend's raw params)
    created_at          REAL NOT NULL DEFAULT 0,
    decision            TEXT,
    decided_at          REAL
);

CREATE INDEX approvals_session ON approvals(session_id, created_at);
-- Restore asks only for the undecided ones; the partial index stays tiny.
CREATE INDEX approvals_pending ON approvals(session_id, created_at) WHERE decision IS NULL;

CREATE TABLE turns (
    session_id       TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn_id          TEXT NOT NULL,
    status           TEXT,
    started_at       REAL,
    ended_at         REAL,
    plan             TEXT,  -- JSON list of plan steps
    plan_explanation TEXT,
    diff             TEXT,
    error            TEXT,
    PRIMARY KEY (session_id, turn_id)
) WITHOUT ROWID;

-- Append-only token snapshots, one per observation (usage history, not state).
CREATE TABLE token_usage (
    id               INTEGER PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    observed_at      REAL NOT NULL,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cached_tokens    INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens     INTEGER NOT NULL DEFAULT 0,
    context_window   INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX token_usage_session ON token_usage(session_id, observed_at);

CREATE TABLE config (
    key   TEXT PRIMARY KEY,
    value TEXT
) WITHOUT ROWID;

-- How far the rollout watcher has consumed each file. No foreign key on
-- session_id: offsets of files the watcher skips are recorded too.
CREATE TABLE rollout_offsets (
    path            TEXT PRIMARY KEY,
    offset          INTEGER NOT NULL,
    session_id      TEXT,
    size            INTEGER,
    mtime           REAL,
    ignore_existing INTEGER NOT NULL DEFAULT 0,
    updated_at      REAL NOT NULL
);
