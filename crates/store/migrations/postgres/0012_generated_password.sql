-- The SHA-256 of the password hash the server generated (and printed once)
-- for the first admin. While the user's hash still matches it, that
-- password was never changed, and every start says how to set a new one.
ALTER TABLE users ADD COLUMN generated_password_digest TEXT;
