-- The refresh reuse interval (docs/tokens.md, "Rotation and the reuse
-- interval"). A session counts its rotations: generation. Every refresh
-- token carries the generation it was issued in; only a token of the
-- session's current generation may rotate, and only the rotated-out token
-- of the generation before may be presented again (within the app's
-- reuse interval), which issues a sibling in the current generation.
ALTER TABLE sessions ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
-- Seconds after a rotation during which the rotated-out token may be
-- presented again; 0 turns the interval off.
ALTER TABLE apps ADD COLUMN refresh_token_reuse_interval BIGINT NOT NULL DEFAULT 30;
