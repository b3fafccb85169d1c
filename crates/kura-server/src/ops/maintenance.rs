//! Repository maintenance under its lease (one process at a time across replicas), and what a
//! repository looks like on disk.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kura_db::{MaintenanceStatus, Repo};
use kura_git::maintenance::{MaintainOptions, ObjectCounts};

use super::{Ops, OpsError, Result};

/// How a maintenance request ended.
pub enum Maintained {
    Done {
        summary: String,
        duration_ms: i64,
    },
    /// Another process holds the repository's maintenance lease.
    Busy,
}

/// A repository's storage and maintenance state, for `kura repo show`.
pub struct RepoReport {
    pub storage: PathBuf,
    pub objects: ObjectCounts,
    pub maintenance: MaintenanceStatus,
}

const LEASE_SECS: i64 = 120;

impl Ops {
    pub async fn repo_report(&self, repo: &Repo) -> Result<RepoReport> {
        Ok(RepoReport {
            storage: self.store.path_of(repo.id),
            objects: self.store.object_counts(repo.id).await?,
            maintenance: self.db.maintenance_status(repo.id).await?,
        })
    }

    /// Repositories whose last full maintenance finished before `before` (Unix seconds).
    pub async fn repos_due_for_maintenance(&self, before: i64) -> Result<Vec<i64>> {
        Ok(self.db.repos_due_for_maintenance(before).await?)
    }

    pub async fn maintain(&self, repo: &Repo, full: bool, grace: Duration) -> Result<Maintained> {
        let owner = self.worker.settings().owner.clone();
        if !self
            .db
            .claim_maintenance(repo.id, &owner, LEASE_SECS)
            .await?
        {
            return Ok(Maintained::Busy);
        }
        let started = Instant::now();
        let renew = async {
            loop {
                tokio::time::sleep(Duration::from_secs(LEASE_SECS as u64 / 3)).await;
                if let Ok(false) = self.db.renew_maintenance(repo.id, &owner, LEASE_SECS).await {
                    return;
                }
            }
        };
        let result = tokio::select! {
            r = self.store.maintain(repo.id, MaintainOptions { full, grace }) => r.map_err(|e| e.to_string()),
            _ = renew => Err("lost the maintenance lease".to_string()),
        };
        let duration_ms = started.elapsed().as_millis() as i64;
        let outcome = result.map(|report| report.summary());
        self.db
            .finish_maintenance(
                repo.id,
                &owner,
                duration_ms,
                outcome.as_ref().map(String::as_str).map_err(String::as_str),
            )
            .await?;
        match outcome {
            Ok(summary) => {
                tracing::info!(repo = %repo.full_name(), duration_ms, %summary, "maintained");
                Ok(Maintained::Done {
                    summary,
                    duration_ms,
                })
            }
            Err(e) => {
                tracing::warn!(repo = %repo.full_name(), error = %e, "maintenance failed");
                Err(OpsError::Storage(format!(
                    "maintenance of {} failed: {e}",
                    repo.full_name()
                )))
            }
        }
    }
}
