//! Browser sessions: only the SHA-256 of the cookie's secret is stored.

use sqlx::Row;

use crate::model::User;
use crate::{now, Db, Result};

#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: User,
    pub csrf: String,
    pub expires_at: i64,
}

impl Db {
    pub async fn create_session(
        &self,
        hash: &str,
        user_id: i64,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session with this hash and its user, in one query (every page asks this).
    pub async fn session_by_hash(&self, hash: &str) -> Result<Option<WebSession>> {
        let row = sqlx::query(&format!(
            "SELECT s.csrf, s.expires_at, {} \
             FROM web_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.hash = $1 AND s.expires_at > $2",
            crate::users::user_cols("u", "")
        ))
        .bind(hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(WebSession {
            csrf: r.try_get("csrf")?,
            expires_at: r.try_get("expires_at")?,
            user: crate::users::user(&r)?,
        }))
    }

    pub async fn delete_session(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of a user (password changed, account disabled), except `keep`.
    pub async fn delete_user_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND hash <> $2")
            .bind(user_id)
            .bind(keep.unwrap_or(""))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn prune_sessions(&self) -> Result<u64> {
        let r = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
