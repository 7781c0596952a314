-- Brute-force defence. Failed logins per key ("pair:<username>:<ip>" and
-- "user:<username>"), decaying with their window; and the IPs a user has
-- signed in from, which a user-wide throttle lets through.
CREATE TABLE login_failures (
    key           TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    last_failure  INTEGER NOT NULL
);
CREATE INDEX login_failures_last ON login_failures(last_failure);

CREATE TABLE known_ips (
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ip            TEXT NOT NULL,
    last_success  INTEGER NOT NULL,
    PRIMARY KEY (user_id, ip)
);
