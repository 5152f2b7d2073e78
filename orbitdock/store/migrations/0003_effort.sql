-- 0003: the reasoning effort a session's turns use (per-turn override that sticks).
ALTER TABLE sessions ADD COLUMN effort TEXT;
