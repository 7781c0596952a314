-- When an app was last deactivated: its own tokens (client_credentials,
-- no session) issued up to then stay dead even after a reactivation.
ALTER TABLE apps ADD COLUMN tokens_revoked_at INTEGER;
