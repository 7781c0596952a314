-- An administrator's lock: a locked user cannot sign in or refresh until
-- unlocked (apart from the automatic, decaying brute-force throttle).
ALTER TABLE users ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE;

-- Case-insensitive SCIM filters and sorts on names compare LOWER(column):
-- index those expressions so they do not scan every user.
CREATE INDEX users_given_name_lower ON users(LOWER(given_name));
CREATE INDEX users_family_name_lower ON users(LOWER(family_name));
CREATE INDEX users_display_name_lower ON users(LOWER(display_name));
