-- Key roll-over: a new signing key is published ("next") before it signs,
-- so verifiers that cache the JWKS already hold it when its first token
-- arrives. activates_at: when a key begins (or began) to sign.
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER;
-- At most one key waits to sign.
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys(state) WHERE state = 'next';
