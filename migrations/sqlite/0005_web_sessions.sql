-- Browser sessions: the cookie holds a random secret, the database only its SHA-256 (as for
-- tokens), so any replica serves a session and a leaked database holds no usable cookie.
-- `csrf` is the session's form token; sessions end at `expires_at`, sign-out, a password
-- change or when the user is disabled.
CREATE TABLE web_sessions (
    hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions(user_id);
CREATE INDEX web_sessions_by_expiry ON web_sessions(expires_at);
