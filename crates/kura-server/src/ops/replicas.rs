//! Replicas on one shared folder: registration and repositories' write leases (the database
//! side is `kura-db::replicas`; the rules are in ARCHITECTURE.md).

use kura_db::{Lease, Replica};

use super::{Ops, Result};
use crate::RepoPath;

/// A replica whose heartbeat is older than this is taken for dead: not forwarded to.
pub const REPLICA_DEAD_AFTER_MS: i64 = 10_000;

impl Ops {
    /// This process's id among replicas (also the owner of its delivery and maintenance
    /// leases, so that a delivery is run by the replica that holds the repository).
    pub fn replica_id(&self) -> &str {
        &self.worker.settings().owner
    }

    /// Several replicas can share the database (PostgreSQL); with SQLite there is one server.
    pub fn shares_database(&self) -> bool {
        self.db.is_postgres()
    }

    pub async fn register_replica(&self, url: &str, host: &str) -> Result<()> {
        Ok(self
            .db
            .register_replica(self.replica_id(), url, host)
            .await?)
    }

    pub async fn replica_heartbeat(&self) -> Result<bool> {
        Ok(self.db.replica_heartbeat(self.replica_id()).await?)
    }

    pub async fn unregister_replica(&self) -> Result<()> {
        Ok(self.db.remove_replica(self.replica_id()).await?)
    }

    pub async fn forget_silent_replicas(&self, silent_ms: i64) -> Result<u64> {
        Ok(self.db.forget_silent_replicas(silent_ms).await?)
    }

    pub async fn replicas(&self) -> Result<Vec<Replica>> {
        Ok(self.db.replicas().await?)
    }

    /// Whether another replica is alive (someone may forward to us).
    pub async fn other_replicas_alive(&self) -> bool {
        let now = kura_db::now_ms();
        self.db.replicas().await.is_ok_and(|all| {
            all.iter().any(|r| {
                r.id != self.replica_id() && now - r.heartbeat_at_ms < REPLICA_DEAD_AFTER_MS
            })
        })
    }

    pub async fn cluster_key(&self) -> Result<String> {
        Ok(self.db.cluster_key().await?)
    }

    /// The live write lease of the repository at `path`, if any (one query per request about
    /// a repository).
    pub async fn live_lease(&self, path: &RepoPath) -> Result<Option<Lease>> {
        Ok(self
            .db
            .live_lease_by_name(&path.namespace, &path.name)
            .await?)
    }

    /// Takes (or renews) repository `repo_id`'s write lease until `expires_at_ms`; `Err` with
    /// the live lease of another replica. Taking over from another holder first removes the
    /// lock files it left: its lease ran out, so nobody else can be writing.
    pub async fn take_write_lease(
        &self,
        repo_id: i64,
        expires_at_ms: i64,
    ) -> Result<std::result::Result<(), Lease>> {
        match self
            .db
            .take_repo_lease(repo_id, self.replica_id(), expires_at_ms)
            .await?
        {
            Err(l) => Ok(Err(l)),
            Ok(None) => Ok(Ok(())),
            Ok(Some(previous)) => {
                let store = self.store.clone();
                let removed =
                    tokio::task::spawn_blocking(move || store.remove_stale_locks(repo_id))
                        .await
                        .unwrap_or_default();
                if !removed.is_empty() {
                    tracing::warn!(repo_id, %previous, files = ?removed, "removed lock files a stopped replica left");
                }
                Ok(Ok(()))
            }
        }
    }

    pub async fn renew_write_lease(&self, repo_id: i64, expires_at_ms: i64) -> Result<bool> {
        Ok(self
            .db
            .renew_repo_lease(repo_id, self.replica_id(), expires_at_ms)
            .await?)
    }

    /// When the last of this replica's write leases runs out (ms), if it holds any.
    pub async fn own_leases_until(&self) -> Result<Option<i64>> {
        Ok(self.db.leases_held_until(self.replica_id()).await?)
    }
}
