//! When to maintain: a while after the last push to a repository (debounced, geometric repack)
//! and on a schedule for every repository (full repack). The work itself is `Ops::maintain`,
//! under a lease shared by every process on the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::app::AppState;
use crate::ops::Maintained;

/// Superseded packs are kept this long for readers (also on other replicas) that still use them.
pub const PACK_GRACE: Duration = Duration::from_secs(3600);

/// Repositories pushed to since their last maintenance, with the time of the last push.
#[derive(Default)]
pub struct Dirty {
    repos: Mutex<HashMap<i64, Instant>>,
}

impl Dirty {
    pub fn mark(&self, repo_id: i64) {
        self.repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(repo_id, Instant::now());
    }

    fn take_quiet(&self, quiet_for: Duration) -> Vec<i64> {
        let mut map = self.repos.lock().unwrap_or_else(|p| p.into_inner());
        let ready: Vec<i64> = map
            .iter()
            .filter(|(_, t)| t.elapsed() >= quiet_for)
            .map(|(id, _)| *id)
            .collect();
        for id in &ready {
            map.remove(id);
        }
        ready
    }
}

/// Marks the repository dirty when dropped, i.e. when a push's response ends.
pub struct MarkOnDrop {
    pub state: AppState,
    pub repo_id: i64,
}

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.state.dirty.mark(self.repo_id);
    }
}

pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let debounce = state.config.maintenance_debounce;
    let interval = state.config.maintenance_interval;
    if debounce.is_zero() && interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let tick = Duration::from_secs(5).min(debounce.max(Duration::from_secs(1)));
        let mut last_sweep: Option<Instant> = None;
        loop {
            tokio::time::sleep(tick).await;
            if !debounce.is_zero() {
                for id in state.dirty.take_quiet(debounce) {
                    run(&state, id, false).await;
                }
            }
            let sweep_due = last_sweep.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
            if sweep_due {
                prune_push_log(&state).await;
            }
            if !interval.is_zero() && sweep_due {
                last_sweep = Some(Instant::now());
                let before = kura_db::now() - interval.as_secs() as i64;
                if let Ok(ids) = state.ops.repos_due_for_maintenance(before).await {
                    for id in ids {
                        run(&state, id, true).await;
                    }
                }
            }
        }
    }))
}

/// Pushes older than `push_log_retention` leave the log, and finished deliveries with them
/// (every replica may do it; deleting twice is harmless).
async fn prune_push_log(state: &AppState) {
    match state
        .ops
        .prune_pushes(state.config.push_log_retention)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(pushes = n, "pruned the push log"),
        Err(e) => tracing::warn!(error = %e, "cannot prune the push log"),
    }
    // Pushes a crashed process never recorded: their notes are older than any push can run.
    let longest = match state.config.git_max_duration {
        d if d.is_zero() => Duration::from_secs(24 * 3600),
        d => d,
    };
    crate::post_receive::recover_orphaned_notes(&state.ops, longest + Duration::from_secs(60))
        .await;
    let ops = state.ops.clone();
    match tokio::task::spawn_blocking(move || ops.sweep_tmp(Duration::from_secs(3600))).await {
        Ok(0) | Err(_) => {}
        Ok(n) => tracing::info!(
            entries = n,
            "removed what interrupted repository creations and deletions left"
        ),
    }
    // Expired browser sessions go at the same pace.
    match state.ops.prune_sessions().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(sessions = n, "removed expired sessions"),
        Err(e) => tracing::warn!(error = %e, "cannot remove expired sessions"),
    }
}

async fn run(state: &AppState, repo_id: i64, full: bool) {
    let Ok(Some(repo)) = state.ops.repo_by_id(repo_id).await else {
        return;
    };
    match maintain(state, &repo, full).await {
        Ok(Maintained::Done { .. }) => {}
        Ok(Maintained::Busy) => {
            tracing::debug!(repo = %repo.full_name(), "maintenance running elsewhere, or another replica holds the repository")
        }
        Err(e) => tracing::warn!(repo = %repo.full_name(), error = %e, "maintenance failed"),
    }
}

/// Maintains `repo` now (the background runs and the API). With several replicas only under
/// the repository's write lease (`Busy` when another replica holds it), and one cache window
/// after taking it when other replicas run: a repack deletes and rewrites files that their
/// requests started before the lease may still open through a stale view.
pub async fn maintain(
    state: &AppState,
    repo: &kura_db::Repo,
    full: bool,
) -> crate::ops::Result<Maintained> {
    let _lease = match state.replicas.get() {
        None => None,
        Some(r) => match r.lease_for(repo.id).await? {
            None => return Ok(Maintained::Busy),
            Some(l) => {
                if state.ops.other_replicas_alive().await {
                    tracing::info!(repo = %repo.full_name(), "maintenance waits one cache window for the other replicas' requests");
                    tokio::time::sleep(state.config.shared_cache_window).await;
                }
                Some(l)
            }
        },
    };
    state.ops.maintain(repo, full, PACK_GRACE).await
}
