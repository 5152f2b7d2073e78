-- 0004: the session a fork was made from (its messages were copied into the fork).
ALTER TABLE sessions ADD COLUMN forked_from_session_id TEXT;
