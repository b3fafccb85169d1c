//! Git processes for smart HTTP: the hardened `git upload-pack|receive-pack` child of one
//! request (the store decides its flags and environment).

use std::path::PathBuf;

use kura_db::Repo;
use kura_git::ServiceRequest;
use tokio::process::Command;

use super::{Ops, Result};

#[derive(Debug, Clone, Copy)]
pub struct ClonePoint {
    pub refs: [u8; 32],
    pub pack_bytes: u64,
}

impl Ops {
    pub fn git_service(&self, req: &ServiceRequest<'_>) -> Command {
        self.store.service(req)
    }

    /// What the pack cache needs to know before answering a clone: the refs' fingerprint and
    /// the size of the repository's packs.
    pub async fn clone_point(&self, repo_id: i64) -> std::io::Result<ClonePoint> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            Ok(ClonePoint {
                refs: store.refs_state(repo_id)?,
                pack_bytes: store.pack_bytes(repo_id)?,
            })
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// The refs' fingerprint alone (after a pack was made: did the refs move meanwhile?).
    pub async fn refs_state(&self, repo_id: i64) -> std::io::Result<[u8; 32]> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.refs_state(repo_id))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Whether pushes to the repository are delivered somewhere (mirrors): then the push's
    /// `post-receive` reports to the server and waits for them.
    pub async fn has_delivery_targets(&self, repo: &Repo) -> Result<bool> {
        Ok(self.db.has_targets(repo.id).await?)
    }

    /// The current values of the named refs (absent ones are missing from the map).
    pub async fn ref_values(
        &self,
        repo: &Repo,
        names: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        Ok(self.store.refs(repo.id, names).await?.into_iter().collect())
    }

    /// A fresh file for one push's noted updates.
    pub fn push_log_path(&self, repo_id: i64) -> PathBuf {
        self.store.push_log_path(repo_id)
    }

    /// Leftovers of interrupted creations and deletions (see `kura-git`).
    pub fn sweep_tmp(&self, age: std::time::Duration) -> usize {
        self.store.sweep_tmp(age)
    }

    /// Push notes left by a process that died before recording them (see `kura-git`).
    pub fn claim_orphaned_push_notes(&self, age: std::time::Duration) -> Vec<(i64, PathBuf)> {
        self.store.claim_orphaned_push_notes(age)
    }
}
