//! Does the store hold what the database lists? For `kura check`, after a restore.

use std::path::PathBuf;

use crate::{RepoStore, Result};

impl RepoStore {
    /// Every repository folder in the store, by id (`<root>/ab/cd/<id>.git`).
    pub fn stored_ids(&self) -> Vec<(i64, PathBuf)> {
        let mut out = Vec::new();
        let Ok(level1) = std::fs::read_dir(&self.root) else {
            return out;
        };
        for a in level1.flatten() {
            let name = a.file_name();
            if name.len() != 2 || !a.path().is_dir() {
                continue; // tmp/ and anything else
            }
            let Ok(level2) = std::fs::read_dir(a.path()) else {
                continue;
            };
            for b in level2.flatten() {
                let Ok(repos) = std::fs::read_dir(b.path()) else {
                    continue;
                };
                for r in repos.flatten() {
                    let file = r.file_name().to_string_lossy().into_owned();
                    if let Some(id) = file
                        .strip_suffix(".git")
                        .and_then(|n| n.parse::<i64>().ok())
                    {
                        out.push((id, r.path()));
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// What is wrong with repository `id` on disk, if anything: no folder, unreadable refs, or
    /// refs pointing at objects that are not there.
    pub async fn check_repo(&self, id: i64) -> Result<Vec<String>> {
        let path = self.path_of(id);
        if !path.join("objects").is_dir() {
            return Ok(vec![format!("no repository folder at {}", path.display())]);
        }
        let refs = match self.refs(id, &[]).await {
            Ok(r) => r,
            Err(e) => return Ok(vec![format!("its refs cannot be read: {e}")]),
        };
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        // `cat-file --batch-check` answers `<oid> missing` for an object that is not there.
        let input: String = refs.values().map(|oid| format!("{oid}\n")).collect();
        let out = self
            .git_with_input(id, &["cat-file", "--batch-check"], &input)
            .await?;
        let missing: std::collections::HashSet<&str> = std::str::from_utf8(&out.stdout)
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.strip_suffix(" missing"))
            .collect();
        let mut problems = Vec::new();
        for (name, oid) in &refs {
            if missing.contains(oid.as_str()) {
                problems.push(format!(
                    "{name} points at {oid}, which is not in the repository"
                ));
            }
        }
        Ok(problems)
    }
}
