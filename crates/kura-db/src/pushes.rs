//! The push log: every accepted push, recorded in the same transaction as the deliveries it
//! starts (the outbox), kept for a configurable time.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::delivery::{Queued, TargetKind};
use crate::{now, Db, Result};

/// One ref a push changed; an all-zero id is a creation (`old`) or a deletion (`new`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedRef {
    #[serde(rename = "ref")]
    pub name: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone)]
pub struct Push {
    pub id: i64,
    pub repo_id: i64,
    pub pusher: String,
    /// How the push arrived, e.g. `http` (smart HTTP, protocol v0/v1).
    pub protocol: String,
    pub refs: Vec<PushedRef>,
    pub created_at: i64,
}

fn push(row: &sqlx::any::AnyRow) -> Result<Push> {
    let refs: String = row.try_get("refs")?;
    Ok(Push {
        id: row.try_get("id")?,
        repo_id: row.try_get("repo_id")?,
        pusher: row.try_get("pusher")?,
        protocol: row.try_get("protocol")?,
        // Rows are written by `record_push` only; an unreadable one shows no refs, not an error.
        refs: serde_json::from_str(&refs).unwrap_or_default(),
        created_at: row.try_get("created_at")?,
    })
}

/// A trigger gets at most this many events from one push (a `--mirror` or `--tags` push of
/// thousands of refs must not start thousands of builds).
pub const MAX_EVENTS_PER_PUSH: usize = 100;

impl Db {
    /// Records an accepted push and queues one delivery per target of the repository, in one
    /// transaction. Returns the push id and the queued deliveries.
    pub async fn record_push(
        &self,
        repo_id: i64,
        pusher: &str,
        protocol: &str,
        refs: &[PushedRef],
    ) -> Result<(i64, Vec<Queued>)> {
        let refs_json = serde_json::to_string(refs).unwrap_or_else(|_| "[]".into());
        let mut tx = self.pool.begin().await?;
        let t = now();
        let (push_id,): (i64,) = sqlx::query_as(
            "INSERT INTO pushes (repo_id, pusher, protocol, refs, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(repo_id)
        .bind(pusher)
        .bind(protocol)
        .bind(&refs_json)
        .bind(t)
        .fetch_one(&mut *tx)
        .await?;
        // Mirrors get one delivery per push (a run mirrors the whole state); triggers one per
        // updated ref (one event each), the repository's own and the server-wide ones.
        let targets: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, kind FROM delivery_targets WHERE repo_id = $1 \
             OR (repo_id IS NULL AND kind = 'trigger') ORDER BY id",
        )
        .bind(repo_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut queued = Vec::new();
        if !targets.is_empty() {
            // A push is a natural moment to retry a failing target: skip its backoff.
            sqlx::query(
                "UPDATE delivery_targets SET next_attempt_at = 0 WHERE repo_id = $1 \
                 OR (repo_id IS NULL AND kind = 'trigger')",
            )
            .bind(repo_id)
            .execute(&mut *tx)
            .await?;
        }
        for (target_id, kind) in targets {
            let is_trigger = kind == TargetKind::Trigger.as_str();
            let per_ref: Vec<Option<&PushedRef>> = if is_trigger {
                refs.iter().take(MAX_EVENTS_PER_PUSH).map(Some).collect()
            } else {
                vec![None]
            };
            if is_trigger && refs.len() > MAX_EVENTS_PER_PUSH {
                // One row says what was left out, instead of thousands of events.
                sqlx::query(
                    "INSERT INTO deliveries (target_id, push_id, created_at, done_at, repo_id, ref_name, old_id, new_id, pusher, status, note) \
                     VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, 'skipped', $9)",
                )
                .bind(target_id)
                .bind(push_id)
                .bind(t)
                .bind(repo_id)
                .bind(&refs[MAX_EVENTS_PER_PUSH].name)
                .bind(&refs[MAX_EVENTS_PER_PUSH].old)
                .bind(&refs[MAX_EVENTS_PER_PUSH].new)
                .bind(pusher)
                .bind(format!(
                    "this push updated {} refs: events were sent for the first {MAX_EVENTS_PER_PUSH}, not for this and the {} after it",
                    refs.len(),
                    refs.len() - MAX_EVENTS_PER_PUSH - 1
                ))
                .execute(&mut *tx)
                .await?;
            }
            for r in per_ref {
                let (delivery_id,): (i64,) = sqlx::query_as(
                    "INSERT INTO deliveries (target_id, push_id, created_at, repo_id, ref_name, old_id, new_id, pusher) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(target_id)
                .bind(push_id)
                .bind(t)
                .bind(repo_id)
                .bind(r.map(|r| r.name.as_str()))
                .bind(r.map(|r| r.old.as_str()))
                .bind(r.map(|r| r.new.as_str()))
                .bind(r.map(|_| pusher))
                .fetch_one(&mut *tx)
                .await?;
                queued.push(Queued {
                    target_id,
                    delivery_id,
                    trigger: r.is_some(),
                });
            }
        }
        tx.commit().await?;
        Ok((push_id, queued))
    }

    /// Pushes to a repository, newest first; `before` (a push id) pages back.
    pub async fn pushes(&self, repo_id: i64, before: Option<i64>, limit: i64) -> Result<Vec<Push>> {
        let rows = sqlx::query(
            "SELECT id, repo_id, pusher, protocol, refs, created_at FROM pushes \
             WHERE repo_id = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(repo_id)
        .bind(before.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(push).collect()
    }

    /// Deletes pushes older than `before` (Unix seconds), and finished deliveries (with
    /// their attempts) done before it; returns how many pushes.
    pub async fn prune_pushes(&self, before: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM delivery_attempts WHERE delivery_id IN \
             (SELECT id FROM deliveries WHERE done_at IS NOT NULL AND done_at < $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM deliveries WHERE done_at IS NOT NULL AND done_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM pushes WHERE created_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }
}

impl Db {
    /// The time of the latest push of every repository that has one (for listings).
    pub async fn last_push_times(&self) -> Result<std::collections::HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT repo_id, MAX(created_at) FROM pushes GROUP BY repo_id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }
}
