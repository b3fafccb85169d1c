//! `kura check`: the database and the repository folder agree (after a restore, say).

use super::{Ops, Result};

pub struct StorageCheck {
    pub checked: usize,
    /// `NS/NAME: what is wrong`, for repositories the database lists.
    pub problems: Vec<String>,
    /// Folders no repository of the database owns (left by a restore, or a crash mid-create).
    pub unlisted: Vec<std::path::PathBuf>,
}

impl Ops {
    pub async fn check_storage(&self) -> Result<StorageCheck> {
        let repos = self.db.list_repos().await?;
        let mut problems = Vec::new();
        for r in &repos {
            for p in self.store.check_repo(r.id).await? {
                problems.push(format!("{} (id {}): {p}", r.full_name(), r.id));
            }
        }
        let known: std::collections::HashSet<i64> = repos.iter().map(|r| r.id).collect();
        let unlisted = self
            .store
            .stored_ids()
            .into_iter()
            .filter(|(id, _)| !known.contains(id))
            .map(|(_, p)| p)
            .collect();
        Ok(StorageCheck {
            checked: repos.len(),
            problems,
            unlisted,
        })
    }
}
