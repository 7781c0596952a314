-- Repeated refused sign-ins of one (username, IP) are folded into one
-- event: how many times it happened, and when it last did.
ALTER TABLE audit_events ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN last_at BIGINT;
