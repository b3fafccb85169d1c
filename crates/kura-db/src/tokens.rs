//! Access tokens: stored as SHA-256 hashes only.

use crate::model::{role, Role, Token, User};
use crate::{Db, Result};

type TokenRow = (i64, i64, String, String, Option<i64>, Option<i64>, i64);
const TOKEN_COLS: &str = "id, user_id, name, scope, expires_at, last_used_at, created_at";

fn token(r: TokenRow) -> Token {
    Token {
        id: r.0,
        user_id: r.1,
        name: r.2,
        scope: role(&r.3),
        expires_at: r.4,
        last_used_at: r.5,
        created_at: r.6,
    }
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
        let row: TokenRow = sqlx::query_as(&format!(
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
        Ok(token(row))
    }

    pub async fn list_tokens(&self, user_id: i64) -> Result<Vec<Token>> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLS} FROM tokens WHERE user_id = $1 ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(token).collect())
    }

    pub async fn token_by_id(&self, id: i64) -> Result<Option<Token>> {
        let row: Option<TokenRow> =
            sqlx::query_as(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(token))
    }

    /// Returns whether a token was deleted.
    pub async fn delete_token(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The token with this hash and its owner.
    /// The token with this hash and its owner, in one query (every token-authenticated
    /// request asks this).
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<(Token, User)>> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT t.id, t.user_id, t.name, t.scope, t.expires_at, t.last_used_at, t.created_at, \
             u.namespace_id, u.name, u.password_hash, u.is_admin, u.disabled, u.created_at \
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let t = token((
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
            r.try_get(6)?,
        ));
        let u = User {
            id: t.user_id,
            namespace_id: r.try_get(7)?,
            name: r.try_get(8)?,
            password_hash: r.try_get(9)?,
            is_admin: r.try_get::<i64, _>(10)? != 0,
            disabled: r.try_get::<i64, _>(11)? != 0,
            created_at: r.try_get(12)?,
        };
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
