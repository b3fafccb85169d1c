//! Push mirrors, the push log and the mirror outbox (`mirror_jobs`), with the lease that keeps
//! one run per mirror across every process sharing the database.

use crate::{conflict, now, Db, Result};

#[derive(Debug, Clone)]
pub struct Mirror {
    pub id: i64,
    pub repo_id: i64,
    /// `namespace/name` of the repository.
    pub repo: String,
    pub url: String,
    pub branches: Vec<String>,
    pub keep_divergent: bool,
    pub create_remote: bool,
    pub username: Option<String>,
    /// Encrypted password (kura-mirror's secret box), never plaintext.
    pub secret: Option<String>,
    pub created_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub next_attempt_at: i64,
    pub attempts: i64,
    pub last_attempt_at: Option<i64>,
    pub last_attempt_job: i64,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub last_summary: Option<String>,
    pub verified: bool,
    pub remote_heads: Option<String>,
    pub runs: i64,
    pub failures: i64,
}

const MIRROR_SELECT: &str = "SELECT m.id, m.repo_id, n.name || '/' || r.name, m.url, m.branches, m.keep_divergent, \
     m.create_remote, m.username, m.secret, m.created_at, m.lease_owner, m.lease_until, m.next_attempt_at, \
     m.attempts, m.last_attempt_at, m.last_attempt_job, m.last_success_at, m.last_error, m.last_duration_ms, \
     m.last_summary, m.verified, m.remote_heads, m.runs, m.failures \
     FROM mirrors m JOIN repos r ON r.id = m.repo_id JOIN namespaces n ON n.id = r.namespace_id";

fn mirror(row: &sqlx::any::AnyRow) -> Result<Mirror> {
    use sqlx::Row;
    let branches: String = row.try_get(4)?;
    Ok(Mirror {
        id: row.try_get(0)?,
        repo_id: row.try_get(1)?,
        repo: row.try_get(2)?,
        url: row.try_get(3)?,
        branches: branches
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        keep_divergent: row.try_get::<i64, _>(5)? != 0,
        create_remote: row.try_get::<i64, _>(6)? != 0,
        username: row.try_get(7)?,
        secret: row.try_get(8)?,
        created_at: row.try_get(9)?,
        lease_owner: row.try_get(10)?,
        lease_until: row.try_get(11)?,
        next_attempt_at: row.try_get(12)?,
        attempts: row.try_get(13)?,
        last_attempt_at: row.try_get(14)?,
        last_attempt_job: row.try_get(15)?,
        last_success_at: row.try_get(16)?,
        last_error: row.try_get(17)?,
        last_duration_ms: row.try_get(18)?,
        last_summary: row.try_get(19)?,
        verified: row.try_get::<i64, _>(20)? != 0,
        remote_heads: row.try_get(21)?,
        runs: row.try_get(22)?,
        failures: row.try_get(23)?,
    })
}

pub struct NewMirror<'a> {
    pub repo_id: i64,
    pub url: &'a str,
    pub branches: &'a [String],
    pub keep_divergent: bool,
    pub create_remote: bool,
    pub username: Option<&'a str>,
    pub secret: Option<&'a str>,
}

/// How a finished run went, for `finish_run`.
pub struct RunRecord<'a> {
    pub max_job: i64,
    pub duration_ms: i64,
    /// `Err(sanitised message)` for a failed run.
    pub result: std::result::Result<RunSuccess<'a>, &'a str>,
    /// For failures: when to try again.
    pub retry_at: i64,
}

pub struct RunSuccess<'a> {
    pub summary: &'a str,
    pub verified: bool,
    pub remote_heads: &'a str,
}

/// Pending work of one mirror.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub count: i64,
    pub oldest_created_at: Option<i64>,
}

impl Db {
    pub async fn add_mirror(&self, new: &NewMirror<'_>, repo_name: &str) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO mirrors (repo_id, url, branches, keep_divergent, create_remote, username, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new.repo_id)
        .bind(new.url)
        .bind(new.branches.join("\n"))
        .bind(new.keep_divergent as i64)
        .bind(new.create_remote as i64)
        .bind(new.username)
        .bind(new.secret)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!("a mirror of {repo_name} to {}", new.url)))?;
        Ok(id)
    }

    pub async fn mirrors(&self, repo_id: Option<i64>) -> Result<Vec<Mirror>> {
        let rows = match repo_id {
            Some(id) => {
                sqlx::query(&format!(
                    "{MIRROR_SELECT} WHERE m.repo_id = $1 ORDER BY m.id"
                ))
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("{MIRROR_SELECT} ORDER BY n.key, r.key, m.id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(mirror).collect()
    }

    pub async fn mirror_by_id(&self, id: i64) -> Result<Option<Mirror>> {
        let row = sqlx::query(&format!("{MIRROR_SELECT} WHERE m.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(mirror).transpose()
    }

    pub async fn has_mirrors(&self, repo_id: i64) -> Result<bool> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mirrors WHERE repo_id = $1")
            .bind(repo_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    pub async fn remove_mirror(&self, id: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM mirror_jobs WHERE mirror_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM mirrors WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records an accepted push and queues one job per mirror of the repository, atomically
    /// (the outbox). Returns the job ids.
    pub async fn record_push(
        &self,
        repo_id: i64,
        pusher: &str,
        refs: &str,
    ) -> Result<Vec<(i64, i64)>> {
        let mut tx = self.pool.begin().await?;
        let t = now();
        let (push_id,): (i64,) = sqlx::query_as(
            "INSERT INTO pushes (repo_id, pusher, refs, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(repo_id)
        .bind(pusher)
        .bind(refs)
        .bind(t)
        .fetch_one(&mut *tx)
        .await?;
        let mirror_ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM mirrors WHERE repo_id = $1")
            .bind(repo_id)
            .fetch_all(&mut *tx)
            .await?;
        // A push is a natural moment to retry a failing mirror: skip its backoff.
        sqlx::query("UPDATE mirrors SET next_attempt_at = 0 WHERE repo_id = $1")
            .bind(repo_id)
            .execute(&mut *tx)
            .await?;
        let mut jobs = Vec::new();
        for (mid,) in mirror_ids {
            let (jid,): (i64,) = sqlx::query_as(
                "INSERT INTO mirror_jobs (mirror_id, push_id, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(mid)
            .bind(push_id)
            .bind(t)
            .fetch_one(&mut *tx)
            .await?;
            jobs.push((mid, jid));
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// Queues a run now (`mirror sync`), skipping any backoff.
    pub async fn enqueue_sync(&self, mirror_id: i64) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let (jid,): (i64,) = sqlx::query_as(
            "INSERT INTO mirror_jobs (mirror_id, push_id, created_at) VALUES ($1, NULL, $2) RETURNING id",
        )
        .bind(mirror_id)
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE mirrors SET next_attempt_at = 0 WHERE id = $1")
            .bind(mirror_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(jid)
    }

    /// Claims a due mirror with pending jobs (or exactly `only`), taking its lease. Returns the
    /// mirror and the highest job id the run covers. The conditional UPDATE is the lock: on
    /// PostgreSQL a concurrent claimer re-checks the lease after the winner commits and loses.
    pub async fn claim_mirror(
        &self,
        owner: &str,
        lease_secs: i64,
        only: Option<i64>,
    ) -> Result<Option<(Mirror, i64)>> {
        let t = now();
        let candidate: Option<(i64,)> = sqlx::query_as(
            "SELECT m.id FROM mirrors m WHERE (m.lease_until IS NULL OR m.lease_until < $1) \
             AND m.next_attempt_at <= $1 AND ($2 = 0 OR m.id = $2) \
             AND EXISTS (SELECT 1 FROM mirror_jobs j WHERE j.mirror_id = m.id AND j.done_at IS NULL) \
             ORDER BY m.next_attempt_at, m.id LIMIT 1",
        )
        .bind(t)
        .bind(only.unwrap_or(0))
        .fetch_optional(&self.pool)
        .await?;
        let Some((id,)) = candidate else {
            return Ok(None);
        };
        let claimed = sqlx::query(
            "UPDATE mirrors SET lease_owner = $1, lease_until = $2 \
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
            "SELECT MAX(id) FROM mirror_jobs WHERE mirror_id = $1 AND done_at IS NULL",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let Some(m) = self.mirror_by_id(id).await? else {
            return Ok(None);
        };
        Ok(Some((m, max_job.unwrap_or(0))))
    }

    /// Extends the lease; `false` when another process owns it now (stop the run).
    pub async fn renew_lease(&self, id: i64, owner: &str, lease_secs: i64) -> Result<bool> {
        let r =
            sqlx::query("UPDATE mirrors SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
                .bind(now() + lease_secs)
                .bind(id)
                .bind(owner)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a run's outcome, marks its jobs done on success, and releases the lease.
    pub async fn finish_run(&self, id: i64, owner: &str, rec: &RunRecord<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let t = now();
        match &rec.result {
            Ok(ok) => {
                let held = sqlx::query(
                    "UPDATE mirrors SET lease_owner = NULL, lease_until = NULL, attempts = 0, next_attempt_at = 0, \
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
                if held.rows_affected() == 1 {
                    sqlx::query(
                        "UPDATE mirror_jobs SET done_at = $1 WHERE mirror_id = $2 AND id <= $3 AND done_at IS NULL",
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
                    "UPDATE mirrors SET lease_owner = NULL, lease_until = NULL, attempts = attempts + 1, \
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

    pub async fn pending(&self, mirror_id: i64) -> Result<Pending> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM mirror_jobs WHERE mirror_id = $1 AND done_at IS NULL",
        )
        .bind(mirror_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Pending {
            count,
            oldest_created_at: oldest,
        })
    }

    /// Whether each job is done.
    pub async fn jobs_done(&self, job_ids: &[i64]) -> Result<Vec<(i64, bool)>> {
        let mut out = Vec::with_capacity(job_ids.len());
        for id in job_ids {
            let row: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT done_at FROM mirror_jobs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            // A vanished job (mirror removed) counts as done: nothing left to wait for.
            out.push((*id, row.map(|(d,)| d.is_some()).unwrap_or(true)));
        }
        Ok(out)
    }
}
