-- 0006: the session's cost so far in USD, as the backend reports it (Claude's
-- total_cost_usd; codex reports none: 0), beside the token counts.
ALTER TABLE sessions ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE token_usage ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
