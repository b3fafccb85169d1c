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
    /// Failed runs in a row since the last success.
    pub failures: i64,
    /// When a failed run is tried again.
    pub retry_at: Option<i64>,
}

/// The wait before retrying after `failures` failed runs in a row: 1 min, doubling, at most 6 h.
pub fn maintenance_retry_secs(failures: i64) -> i64 {
    let shift = failures.clamp(1, 20) - 1;
    (60i64 << shift).min(6 * 3600)
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
        let t = now();
        match outcome {
            Ok(r) => sqlx::query(
                "UPDATE repo_maintenance SET lease_owner = NULL, lease_until = NULL, last_finished_at = $1, \
                 last_result = $2, last_error = NULL, last_duration_ms = $3, runs = runs + 1, \
                 failures = 0, retry_at = NULL WHERE repo_id = $4 AND lease_owner = $5",
            )
            .bind(t)
            .bind(r)
            .bind(duration_ms)
            .bind(repo_id)
            .bind(owner)
            .execute(&self.pool)
            .await?,
            Err(e) => {
                // Only the lease holder writes the row, so the count read here stays true.
                let (failures,): (i64,) =
                    sqlx::query_as("SELECT failures FROM repo_maintenance WHERE repo_id = $1")
                        .bind(repo_id)
                        .fetch_optional(&self.pool)
                        .await?
                        .unwrap_or((0,));
                sqlx::query(
                    "UPDATE repo_maintenance SET lease_owner = NULL, lease_until = NULL, last_finished_at = $1, \
                     last_error = $2, last_duration_ms = $3, runs = runs + 1, failures = failures + 1, \
                     retry_at = $4 WHERE repo_id = $5 AND lease_owner = $6",
                )
                .bind(t)
                .bind(e)
                .bind(duration_ms)
                .bind(t + maintenance_retry_secs(failures + 1))
                .bind(repo_id)
                .bind(owner)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(())
    }

    pub async fn maintenance_status(&self, repo_id: i64) -> Result<MaintenanceStatus> {
        let row = sqlx::query(
            "SELECT lease_owner, lease_until, last_started_at, last_finished_at, last_result, \
             last_error, last_duration_ms, runs, failures, retry_at FROM repo_maintenance WHERE repo_id = $1",
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
            failures: r.try_get("failures")?,
            retry_at: r.try_get("retry_at")?,
        })
    }

    /// Repositories not maintained since `before` (never maintained first), and those whose
    /// last run failed once their retry is due (a failure does not count as maintained).
    pub async fn repos_due_for_maintenance(&self, before: i64) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT r.id FROM repos r LEFT JOIN repo_maintenance m ON m.repo_id = r.id \
             WHERE m.repo_id IS NULL OR m.last_finished_at IS NULL \
             OR (m.retry_at IS NULL AND m.last_finished_at < $1) OR m.retry_at <= $2 \
             ORDER BY COALESCE(m.last_finished_at, 0), r.id",
        )
        .bind(before)
        .bind(now())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
