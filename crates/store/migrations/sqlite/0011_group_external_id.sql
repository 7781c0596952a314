-- A group's externalId (RFC 7643 §3.1): the provisioning client's own
-- identifier, kept as given and returned.
ALTER TABLE groups ADD COLUMN external_id TEXT;
