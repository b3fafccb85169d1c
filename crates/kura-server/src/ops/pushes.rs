//! The push log: every accepted push, and the deliveries it starts, in one transaction.

use std::time::Duration;

use kura_db::{Push, PushedRef, Queued, Repo};

use super::{Ops, Result};

/// The most pushes one page of the log returns.
pub const MAX_PAGE: i64 = 100;

impl Ops {
    /// Records the push and queues a delivery for every target of the repository; wakes the
    /// worker when there is something to deliver.
    pub async fn record_push(
        &self,
        repo: &Repo,
        pusher: &str,
        protocol: &str,
        refs: &[PushedRef],
    ) -> Result<Vec<Queued>> {
        let (_, queued) = self.db.record_push(repo.id, pusher, protocol, refs).await?;
        if queued.iter().any(|q| !q.trigger) {
            self.worker.kick();
        }
        let events: Vec<i64> = queued
            .iter()
            .filter(|q| q.trigger)
            .map(|q| q.delivery_id)
            .collect();
        if !events.is_empty() {
            // Build each ref's event once for all its triggers, then wake the worker: it finds
            // them built (a worker woken first would build the same event again).
            let triggers = self.triggers.clone();
            tokio::spawn(async move {
                triggers.kind().prebuild(&events).await;
                triggers.kick();
            });
        }
        Ok(queued)
    }

    /// Newest first; `before` is the id of the last push of the previous page.
    pub async fn pushes(&self, repo: &Repo, before: Option<i64>, limit: i64) -> Result<Vec<Push>> {
        Ok(self
            .db
            .pushes(repo.id, before, limit.clamp(1, MAX_PAGE))
            .await?)
    }

    /// Deletes pushes older than `keep`; returns how many.
    pub async fn prune_pushes(&self, keep: Duration) -> Result<u64> {
        if keep.is_zero() {
            return Ok(0);
        }
        let before = kura_db::now().saturating_sub(keep.as_secs().min(i64::MAX as u64) as i64);
        Ok(self.db.prune_pushes(before).await?)
    }
}

impl Ops {
    /// When each repository was last pushed to (repositories never pushed to are absent).
    pub async fn last_push_times(&self) -> Result<std::collections::HashMap<i64, i64>> {
        Ok(self.db.last_push_times().await?)
    }
}
