//! Browser sessions: a random secret in the cookie, its SHA-256 in the database (any replica
//! serves it), a CSRF token per session.

use std::time::Duration;

use kura_db::{secrets, User, WebSession};

use super::{Ops, Result};

/// What the cookie carries and what every form of the session must echo.
pub struct NewSession {
    pub secret: String,
    pub csrf: String,
}

impl Ops {
    pub async fn start_session(&self, user: &User, ttl: Duration) -> Result<NewSession> {
        let secret = secrets::random_secret(43);
        let csrf = secrets::random_secret(32);
        let expires = kura_db::now() + ttl.as_secs().max(60) as i64;
        self.db
            .create_session(&secrets::token_hash(&secret), user.id, &csrf, expires)
            .await?;
        Ok(NewSession { secret, csrf })
    }

    /// The live session this secret opens, with its user.
    pub async fn session(&self, secret: &str) -> Result<Option<WebSession>> {
        Ok(self
            .db
            .session_by_hash(&secrets::token_hash(secret))
            .await?)
    }

    pub async fn end_session(&self, secret: &str) -> Result<()> {
        Ok(self.db.delete_session(&secrets::token_hash(secret)).await?)
    }

    /// Ends every session of the user except the one with secret `keep`.
    pub async fn end_sessions_of(&self, user: &User, keep: Option<&str>) -> Result<u64> {
        let keep = keep.map(secrets::token_hash);
        Ok(self
            .db
            .delete_user_sessions(user.id, keep.as_deref())
            .await?)
    }

    pub async fn prune_sessions(&self) -> Result<u64> {
        Ok(self.db.prune_sessions().await?)
    }
}
