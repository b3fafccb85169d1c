//! Does the store hold what the database lists? For `kura check`, after a restore.

use std::path::PathBuf;
use std::process::Stdio;

use crate::{io_err, RepoStore, Result};

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
        let refs = match self.refs(id).await {
            Ok(r) => r,
            Err(e) => return Ok(vec![format!("its refs cannot be read: {e}")]),
        };
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        // `cat-file --batch-check` answers `<oid> missing` for an object that is not there.
        let mut child = self
            .git()
            .arg("--git-dir")
            .arg(&path)
            .args(["cat-file", "--batch-check"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io_err("cannot run git cat-file"))?;
        let mut input = String::new();
        for oid in refs.values() {
            input.push_str(oid);
            input.push('\n');
        }
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(input.as_bytes())
                .await
                .map_err(io_err("cannot write to git cat-file"))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(io_err("cannot wait for git cat-file"))?;
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
