-- The HTTP request an audit event happened in (its X-Request-Id), so an
-- event can be joined with the request's log lines.
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
