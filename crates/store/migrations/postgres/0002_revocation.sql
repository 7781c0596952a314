-- Revoked access tokens (RFC 7009): their jti, kept until the token
-- expires. Shared by every node through the database.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens(expires_at);
