-- Console sessions (the server-rendered /console): the cookie value only as
-- its SHA-256, the OAuth tokens sealed under the master key.
CREATE TABLE console_sessions (
    id_hash            TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    sealed_tokens      TEXT NOT NULL,
    access_expires_at  INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL,
    refreshing_since   INTEGER
);
CREATE INDEX console_sessions_last_seen ON console_sessions(last_seen_at);
CREATE INDEX console_sessions_created ON console_sessions(created_at);
