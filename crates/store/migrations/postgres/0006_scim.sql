-- The SCIM Users and Groups API. Users gain the SCIM attributes externalId
-- and displayName, a lower-cased email for case-insensitive filters
-- (RFC 7643: emails.value is not caseExact), and a version that every
-- write increments (the ETag; If-Match compares it). Groups get a version.
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN email_key TEXT;
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
UPDATE users SET email_key = LOWER(email);
CREATE INDEX users_email_key ON users(email_key);
CREATE INDEX users_external_id ON users(external_id);
ALTER TABLE groups ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
