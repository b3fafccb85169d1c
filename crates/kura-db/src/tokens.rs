//! Access tokens: stored as SHA-256 hashes only.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::model::{role, Role, Token, User};
use crate::{Db, Result};

const TOKEN_COLS: &str = "id, user_id, name, scope, expires_at, last_used_at, created_at";

/// A row with the columns of `TOKEN_COLS`.
fn token(row: &AnyRow) -> Result<Token> {
    Ok(Token {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        scope: role(&row.try_get::<String, _>("scope")?),
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Db {
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        hash: &str,
        scope: Role,
        expires_at: Option<i64>,
    ) -> Result<Token> {
        let row = sqlx::query(&format!(
            "INSERT INTO tokens (user_id, name, hash, scope, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLS}"
        ))
        .bind(user_id)
        .bind(name)
        .bind(hash)
        .bind(scope.as_str())
        .bind(expires_at)
        .bind(crate::now())
        .fetch_one(&self.pool)
        .await?;
        token(&row)
    }

    pub async fn list_tokens(&self, user_id: i64) -> Result<Vec<Token>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE user_id = $1 ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token).collect()
    }

    pub async fn token_by_id(&self, id: i64) -> Result<Option<Token>> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token).transpose()
    }

    /// Returns whether a token was deleted.
    pub async fn delete_token(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The token with this hash and its owner, in one query (every token-authenticated
    /// request asks this).
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<(Token, User)>> {
        // The token's columns keep their names (what `token` reads); the owner's are prefixed.
        let row = sqlx::query(&format!(
            "SELECT t.id, t.user_id, t.name, t.scope, t.expires_at, t.last_used_at, t.created_at, \
             {} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
            crate::users::user_cols("u", "owner_")
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let t = token(&r)?;
        let u = crate::users::user_prefixed(&r, "owner_")?;
        Ok(Some((t, u)))
    }

    pub async fn touch_token(&self, id: i64, at: i64) -> Result<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
