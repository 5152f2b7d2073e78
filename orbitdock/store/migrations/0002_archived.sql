-- 0002: a session whose backend thread is archived (codex thread/archive) leaves the default
-- session list until it is unarchived; 0/1.
ALTER TABLE sessions ADD COLUMN is_archived INTEGER NOT NULL DEFAULT 0;
