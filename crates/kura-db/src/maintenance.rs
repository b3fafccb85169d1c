//! Repository maintenance bookkeeping: a lease per repository so that one process at a time
//! maintains it (also across replicas), and the last run's outcome.

use sqlx::Row;

use crate::{now, Db, Result};

#[derive(Debug, Clone, Default)]
pub struct MaintenanceStatus {
    pub running_by: Option<String>,
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub runs: i64,
}

impl Db {
    /// Takes the repository's maintenance lease; `false` when another process holds it.
    pub async fn claim_maintenance(
        &self,
        repo_id: i64,
        owner: &str,
        lease_secs: i64,
    ) -> Result<bool> {
        let t = now();
        sqlx::query(
            "INSERT INTO repo_maintenance (repo_id) VALUES ($1) ON CONFLICT (repo_id) DO NOTHING",
        )
        .bind(repo_id)
        .execute(&self.pool)
        .await?;
        let r = sqlx::query(
            "UPDATE repo_maintenance SET lease_owner = $1, lease_until = $2, last_started_at = $3 \
             WHERE repo_id = $4 AND (lease_until IS NULL OR lease_until < $3)",
        )
        .bind(owner)
        .bind(t + lease_secs)
        .bind(t)
        .bind(repo_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn renew_maintenance(
        &self,
        repo_id: i64,
        owner: &str,
        lease_secs: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE repo_maintenance SET lease_until = $1 WHERE repo_id = $2 AND lease_owner = $3",
        )
        .bind(now() + lease_secs)
        .bind(repo_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records the outcome (`Ok(summary)` or `Err(message)`) and releases the lease.
    pub async fn finish_maintenance(
        &self,
        repo_id: i64,
        owner: &str,
        duration_ms: i64,
        outcome: std::result::Result<&str, &str>,
    ) -> Result<()> {
        let (result, error) = match outcome {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        sqlx::query(
            "UPDATE repo_maintenance SET lease_owner = NULL, lease_until = NULL, last_finished_at = $1, \
             last_result = COALESCE($2, last_result), last_error = $3, last_duration_ms = $4, runs = runs + 1 \
             WHERE repo_id = $5 AND lease_owner = $6",
        )
        .bind(now())
        .bind(result)
        .bind(error)
        .bind(duration_ms)
        .bind(repo_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn maintenance_status(&self, repo_id: i64) -> Result<MaintenanceStatus> {
        let row = sqlx::query(
            "SELECT lease_owner, lease_until, last_started_at, last_finished_at, last_result, \
             last_error, last_duration_ms, runs FROM repo_maintenance WHERE repo_id = $1",
        )
        .bind(repo_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(MaintenanceStatus::default());
        };
        let lease_owner: Option<String> = r.try_get("lease_owner")?;
        let lease_until: Option<i64> = r.try_get("lease_until")?;
        let running = lease_until.is_some_and(|u| u >= now());
        Ok(MaintenanceStatus {
            running_by: if running { lease_owner } else { None },
            last_started_at: r.try_get("last_started_at")?,
            last_finished_at: r.try_get("last_finished_at")?,
            last_result: r.try_get("last_result")?,
            last_error: r.try_get("last_error")?,
            last_duration_ms: r.try_get("last_duration_ms")?,
            runs: r.try_get("runs")?,
        })
    }

    /// Repositories not maintained since `before` (never maintained first).
    pub async fn repos_due_for_maintenance(&self, before: i64) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT r.id FROM repos r LEFT JOIN repo_maintenance m ON m.repo_id = r.id \
             WHERE m.last_finished_at IS NULL OR m.last_finished_at < $1 \
             ORDER BY COALESCE(m.last_finished_at, 0), r.id",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
