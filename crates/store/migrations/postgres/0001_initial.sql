-- Latchkey schema, PostgreSQL. Kept in step with ../sqlite/0001_initial.sql
-- (same tables, columns and indexes; only the types differ).

CREATE TABLE resource_servers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    audience    TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,          -- JSON array of scope names
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE group_roles (
    group_id    TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    PRIMARY KEY (group_id, role)
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,  -- lower-cased username
    password_hash TEXT,
    given_name    TEXT,
    family_name   TEXT,
    email         TEXT,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE user_groups (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_groups_group ON user_groups(group_id);

CREATE TABLE user_roles (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role     TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role ON user_roles(role);

CREATE TABLE apps (
    id                 TEXT PRIMARY KEY,
    client_id          TEXT NOT NULL UNIQUE,
    name               TEXT NOT NULL,
    app_type           TEXT NOT NULL,
    secret_hash        TEXT,
    grant_types        TEXT NOT NULL,   -- JSON arrays
    redirect_uris      TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    app_roles          TEXT NOT NULL,
    jwks               TEXT,
    certificate        TEXT,
    access_token_ttl   BIGINT NOT NULL,
    refresh_token_ttl  BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    auth_time   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_app ON sessions(app_id);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,       -- hex SHA-256 of the token
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    app_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    rotated_at  BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);

CREATE TABLE signing_keys (
    kid                    TEXT PRIMARY KEY,
    alg                    TEXT NOT NULL,
    encrypted_private_key  BYTEA NOT NULL,  -- AES-256-GCM under the master key
    public_jwk             TEXT NOT NULL,
    state                  TEXT NOT NULL,  -- active | retiring | retired
    created_at             BIGINT NOT NULL,
    retired_at             BIGINT
);
-- At most one active key.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(state) WHERE state = 'active';
