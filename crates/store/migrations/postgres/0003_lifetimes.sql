-- When a signing key stopped signing (it is retired once every token it
-- signed has expired), and an optional absolute session lifetime per app.
ALTER TABLE signing_keys ADD COLUMN retiring_at BIGINT;
ALTER TABLE apps ADD COLUMN session_lifetime BIGINT;
