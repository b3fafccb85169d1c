//! Protected-branch rules.

use sqlx::Row;

use crate::model::Protection;
use crate::{Db, Result};

impl Db {
    /// Creates or replaces the rule for `pattern`.
    pub async fn protect(&self, repo_id: i64, pattern: &str, pushers: &[i64]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO protected_branches (repo_id, pattern) VALUES ($1, $2) \
             ON CONFLICT (repo_id, pattern) DO NOTHING",
        )
        .bind(repo_id)
        .bind(pattern)
        .execute(&mut *tx)
        .await?;
        let (id,): (i64,) =
            sqlx::query_as("SELECT id FROM protected_branches WHERE repo_id = $1 AND pattern = $2")
                .bind(repo_id)
                .bind(pattern)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM protected_branch_pushers WHERE protection_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for user_id in pushers {
            sqlx::query(
                "INSERT INTO protected_branch_pushers (protection_id, user_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Returns whether a rule was removed.
    pub async fn unprotect(&self, repo_id: i64, pattern: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM protected_branch_pushers WHERE protection_id IN \
             (SELECT id FROM protected_branches WHERE repo_id = $1 AND pattern = $2)",
        )
        .bind(repo_id)
        .bind(pattern)
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query("DELETE FROM protected_branches WHERE repo_id = $1 AND pattern = $2")
            .bind(repo_id)
            .bind(pattern)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn protections(&self, repo_id: i64) -> Result<Vec<Protection>> {
        let rows = sqlx::query(
            "SELECT p.pattern, u.name AS pusher FROM protected_branches p \
             LEFT JOIN protected_branch_pushers pp ON pp.protection_id = p.id \
             LEFT JOIN users u ON u.id = pp.user_id \
             WHERE p.repo_id = $1 ORDER BY p.pattern, u.key",
        )
        .bind(repo_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Protection> = Vec::new();
        for row in &rows {
            let pattern: String = row.try_get("pattern")?;
            let user: Option<String> = row.try_get("pusher")?;
            if out.last().map(|p| p.pattern != pattern).unwrap_or(true) {
                out.push(Protection {
                    pattern,
                    allow_push: Vec::new(),
                });
            }
            if let (Some(u), Some(last)) = (user, out.last_mut()) {
                last.allow_push.push(u);
            }
        }
        Ok(out)
    }
}
