-- Audit events: who did what to whom, when, from where, and how it ended.
-- Never a secret: details are reasons and names, not passwords or tokens.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    at          INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    actor       TEXT,
    subject     TEXT,
    client_id   TEXT,
    ip          TEXT,
    detail      TEXT
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_subject ON audit_events(subject, at);
CREATE INDEX audit_events_type ON audit_events(event_type, at);
