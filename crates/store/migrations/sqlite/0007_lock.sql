-- An administrator's lock: a locked user cannot sign in or refresh until
-- unlocked (apart from the automatic, decaying brute-force throttle).
ALTER TABLE users ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE;
