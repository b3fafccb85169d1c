//! The one delivery machinery: targets (mirrors today, push triggers next) with a lease, retry
//! state and last result, and `deliveries`, one row per target per push (the outbox). Claiming
//! is a conditional UPDATE of the lease: atomic on SQLite and PostgreSQL, and a lease (unlike a
//! row lock) survives the claiming transaction, so a crashed holder is replaced once it expires.

use crate::{now, Db, Result};

/// What kind of target a row is; each kind has its own delivery code and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Mirror,
    /// A push trigger: a webhook, an EventBridge bus or a CodePipeline pipeline.
    Trigger,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Mirror => "mirror",
            TargetKind::Trigger => "trigger",
        }
    }
}

/// How a finished run went, for `finish_delivery`.
pub struct RunRecord<'a> {
    /// The highest delivery id the run covered (everything queued when it started).
    pub max_job: i64,
    /// A success marks every delivery up to `max_job` done (a mirror run delivers the whole
    /// state); `false` when the kind marks each delivery itself (trigger events).
    pub covers_queue: bool,
    pub duration_ms: i64,
    /// `Err(sanitised message)` for a failed run.
    pub result: std::result::Result<RunSuccess<'a>, &'a str>,
    /// For failures: when to try again.
    pub retry_at: i64,
}

pub struct RunSuccess<'a> {
    pub summary: &'a str,
    /// Mirrors: the remote was checked after the push and matched.
    pub verified: bool,
    /// Mirrors: `refname oid` lines of the remote after the push.
    pub remote_heads: &'a str,
}

/// Pending work of one target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pending {
    pub count: i64,
    pub oldest_created_at: Option<i64>,
}

/// A queued delivery: the target and the delivery row, as `record_push` returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub target_id: i64,
    pub delivery_id: i64,
    /// A trigger's event (one per ref), not a mirror run.
    pub trigger: bool,
}

impl Db {
    /// Queues a delivery to the target now (a manual sync, a missed push), skipping any backoff.
    pub async fn enqueue_delivery(&self, target_id: i64) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let (jid,): (i64,) = sqlx::query_as(
            "INSERT INTO deliveries (target_id, push_id, created_at) VALUES ($1, NULL, $2) RETURNING id",
        )
        .bind(target_id)
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE delivery_targets SET next_attempt_at = 0 WHERE id = $1")
            .bind(target_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(jid)
    }

    /// Claims a due target of `kind` with pending deliveries (or exactly `only`), taking its
    /// lease. Returns the target id and the highest delivery id the run covers. On PostgreSQL a
    /// concurrent claimer re-checks the lease after the winner commits and loses.
    pub async fn claim_delivery(
        &self,
        kind: TargetKind,
        owner: &str,
        lease_secs: i64,
        only: Option<i64>,
    ) -> Result<Option<(i64, i64)>> {
        let t = now();
        let candidate: Option<(i64,)> = sqlx::query_as(
            "SELECT m.id FROM delivery_targets m WHERE m.kind = $3 \
             AND (m.lease_until IS NULL OR m.lease_until < $1) \
             AND m.next_attempt_at <= $1 AND ($2 = 0 OR m.id = $2) \
             AND EXISTS (SELECT 1 FROM deliveries j WHERE j.target_id = m.id AND j.done_at IS NULL) \
             AND NOT EXISTS (SELECT 1 FROM repo_leases l WHERE l.repo_id = m.repo_id \
                 AND l.holder <> $4 AND l.expires_at_ms > $5) \
             ORDER BY m.next_attempt_at, m.id LIMIT 1",
        )
        .bind(t)
        .bind(only.unwrap_or(0))
        .bind(kind.as_str())
        // A repository another replica changed within its cache window reads stale here:
        // the holder (or anyone, once the lease ran out) runs the delivery.
        .bind(owner)
        .bind(crate::now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some((id,)) = candidate else {
            return Ok(None);
        };
        let claimed = sqlx::query(
            "UPDATE delivery_targets SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND (lease_until IS NULL OR lease_until < $4)",
        )
        .bind(owner)
        .bind(t + lease_secs)
        .bind(id)
        .bind(t)
        .execute(&self.pool)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(None);
        }
        let (max_job,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(id) FROM deliveries WHERE target_id = $1 AND done_at IS NULL",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some((id, max_job.unwrap_or(0))))
    }

    /// Extends the lease; `false` when another process owns it now (stop the run).
    pub async fn renew_lease(&self, id: i64, owner: &str, lease_secs: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE delivery_targets SET lease_until = $1 WHERE id = $2 AND lease_owner = $3",
        )
        .bind(now() + lease_secs)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a run's outcome, marks its deliveries done on success, and releases the lease.
    pub async fn finish_delivery(&self, id: i64, owner: &str, rec: &RunRecord<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let t = now();
        match &rec.result {
            Ok(ok) => {
                let held = sqlx::query(
                    "UPDATE delivery_targets SET lease_owner = NULL, lease_until = NULL, attempts = 0, next_attempt_at = 0, \
                     last_attempt_at = $1, last_attempt_job = $2, last_success_at = $1, last_error = NULL, \
                     last_duration_ms = $3, last_summary = $4, verified = $5, remote_heads = $6, runs = runs + 1 \
                     WHERE id = $7 AND lease_owner = $8",
                )
                .bind(t)
                .bind(rec.max_job)
                .bind(rec.duration_ms)
                .bind(ok.summary)
                .bind(ok.verified as i64)
                .bind(ok.remote_heads)
                .bind(id)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
                // A run that lost its lease must not mark work done that it may not have done.
                if held.rows_affected() == 1 && rec.covers_queue {
                    sqlx::query(
                        "UPDATE deliveries SET done_at = $1, status = 'delivered' WHERE target_id = $2 AND id <= $3 AND done_at IS NULL",
                    )
                    .bind(t)
                    .bind(id)
                    .bind(rec.max_job)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Err(msg) => {
                sqlx::query(
                    "UPDATE delivery_targets SET lease_owner = NULL, lease_until = NULL, attempts = attempts + 1, \
                     next_attempt_at = $1, last_attempt_at = $2, last_attempt_job = $3, last_error = $4, \
                     last_duration_ms = $5, runs = runs + 1, failures = failures + 1 \
                     WHERE id = $6 AND lease_owner = $7",
                )
                .bind(rec.retry_at)
                .bind(t)
                .bind(rec.max_job)
                .bind(*msg)
                .bind(rec.duration_ms)
                .bind(id)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn pending(&self, target_id: i64) -> Result<Pending> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE target_id = $1 AND done_at IS NULL",
        )
        .bind(target_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Pending {
            count,
            oldest_created_at: oldest,
        })
    }

    /// Whether each delivery is done. A vanished one (target removed) counts as done.
    pub async fn deliveries_done(&self, ids: &[i64]) -> Result<Vec<(i64, bool)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT done_at FROM deliveries WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            out.push((*id, row.map(|(d,)| d.is_some()).unwrap_or(true)));
        }
        Ok(out)
    }

    /// Whether anything is delivered after pushes to the repository (its own targets, or a
    /// server-wide trigger).
    pub async fn has_targets(&self, repo_id: i64) -> Result<bool> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM delivery_targets WHERE repo_id = $1 OR (repo_id IS NULL AND kind = 'trigger')",
        )
        .bind(repo_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Removes a target and whatever is still queued for it.
    pub async fn remove_target(&self, id: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE target_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM deliveries WHERE target_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM delivery_targets WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }
}
