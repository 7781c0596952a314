-- Client authentication. Apps can be deactivated; an app that accepts
-- client_secret_jwt keeps its secret sealed (AES-256-GCM under the master
-- key) beside the keyed hash; a rotated-out secret stays valid until its
-- grace period ends; and client assertions' jti values are remembered until
-- the assertion expires, so that none is accepted twice by any node.
ALTER TABLE apps ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE apps ADD COLUMN secret_sealed TEXT;
ALTER TABLE apps ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE apps ADD COLUMN previous_secret_sealed TEXT;
ALTER TABLE apps ADD COLUMN previous_secret_expires_at BIGINT;

CREATE TABLE client_assertions (
    client_id   TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions(expires_at);
