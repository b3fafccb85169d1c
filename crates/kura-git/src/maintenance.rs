//! Repository maintenance: keeps clones and fetches cheap. Geometric repacks into a multi-pack
//! index with a reachability bitmap (or one full pack with `full`), an up-to-date commit-graph,
//! packed refs, and pruning of old unreachable loose objects. The caller holds the repository's
//! maintenance lease.
//!
//! Safety for concurrent readers, also on NFS (EFS): before a repack deletes the packs it rolled
//! up, they are hard-linked into `objects/kura-graveyard/<time>/`, which keeps their inodes (and
//! so open NFS file handles on other replicas) alive; graveyards older than `grace` are removed
//! by a later run. Loose objects are pruned only after two weeks, like `git gc`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{io_err, GitError, RepoStore, Result};

#[derive(Debug, Clone, Copy)]
pub struct MaintainOptions {
    /// Repack everything into one pack (weekly/daily), instead of a geometric roll-up.
    pub full: bool,
    /// How long superseded packs are kept for readers that still have them open.
    pub grace: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct ObjectCounts {
    pub packs: u64,
    pub loose: u64,
    pub size_kib: u64,
}

#[derive(Debug, Clone)]
pub struct MaintainReport {
    pub full: bool,
    pub before: ObjectCounts,
    pub after: ObjectCounts,
    pub graveyards_removed: usize,
    pub grace: Duration,
}

impl MaintainReport {
    /// What the run did, for a person: what was repacked, what stays and why the size may
    /// grow.
    pub fn summary(&self) -> String {
        let (b, a) = (&self.before, &self.after);
        let mut out = if self.full {
            format!(
                "repacked everything into {} (was {}",
                packs(a.packs),
                packs(b.packs)
            )
        } else {
            format!(
                "rolled recent packs up: {} (was {}",
                packs(a.packs),
                packs(b.packs)
            )
        };
        out.push_str(&format!(
            " and {} loose objects); packed size {} KiB (was {} KiB)",
            b.loose, a.size_kib, b.size_kib
        ));
        if a.size_kib > b.size_kib {
            out.push_str(", larger by the new reachability bitmap and indexes");
        }
        if a.loose > 0 {
            out.push_str(&format!(
                "; {} unreachable objects stay loose until they are two weeks old (a push in progress may still need them)",
                a.loose
            ));
        }
        out.push_str(&format!(
            "; the packs replaced are kept for {} for readers that still have them open",
            kura_proto::format_duration(self.grace)
        ));
        if self.graveyards_removed > 0 {
            out.push_str(&format!(
                " ({} older sets of them removed)",
                self.graveyards_removed
            ));
        }
        out
    }
}

fn packs(n: u64) -> String {
    if n == 1 {
        "1 pack".into()
    } else {
        format!("{n} packs")
    }
}

const GRAVEYARD: &str = "kura-graveyard";

impl RepoStore {
    async fn git_in(&self, id: i64, args: &[&str], what: &str) -> Result<String> {
        let out = self
            .git()
            .arg("--git-dir")
            .arg(self.path_of(id))
            .args(args)
            .output()
            .await
            .map_err(io_err(format!("cannot run git {what}")))?;
        if !out.status.success() {
            return Err(GitError::Git {
                what: what.into(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `git count-objects -v`: packs, loose objects and their size.
    pub async fn object_counts(&self, id: i64) -> Result<ObjectCounts> {
        let text = self
            .git_in(id, &["count-objects", "-v"], "count-objects")
            .await?;
        let mut c = ObjectCounts::default();
        let mut loose_kib = 0;
        let mut pack_kib = 0;
        for line in text.lines() {
            let (k, v) = line.split_once(": ").unwrap_or(("", ""));
            let n: u64 = v.trim().parse().unwrap_or(0);
            match k {
                "count" => c.loose = n,
                "packs" => c.packs = n,
                "size" => loose_kib = n,
                "size-pack" => pack_kib = n,
                _ => {}
            }
        }
        c.size_kib = loose_kib + pack_kib;
        Ok(c)
    }

    pub async fn maintain(&self, id: i64, opts: MaintainOptions) -> Result<MaintainReport> {
        let repo = self.path_of(id);
        let before = self.object_counts(id).await?;
        self.git_in(id, &["pack-refs", "--all", "--prune"], "pack-refs")
            .await?;
        keep_packs_for_readers(&repo)?;
        let mut args = vec!["repack", "-d", "-q", "--write-bitmap-index"];
        if opts.full {
            // -A, not -a: unreachable objects stay (loose) until `prune` expires them.
            args.extend(["-A", "--write-midx"]);
        } else {
            args.extend(["--geometric=2", "--write-midx"]);
        }
        self.git_in(id, &args, "repack").await?;
        self.git_in(
            id,
            &["commit-graph", "write", "--reachable", "--changed-paths"],
            "commit-graph write",
        )
        .await?;
        self.git_in(id, &["prune", "--expire=2.weeks.ago"], "prune")
            .await?;
        let graveyards_removed = remove_old_graveyards(&repo, opts.grace)?;
        let after = self.object_counts(id).await?;
        Ok(MaintainReport {
            full: opts.full,
            before,
            after,
            graveyards_removed,
            grace: opts.grace,
        })
    }
}

/// Hard-links every current pack file into a fresh graveyard folder.
fn keep_packs_for_readers(repo: &Path) -> Result<()> {
    let pack_dir = repo.join("objects").join("pack");
    let entries = match std::fs::read_dir(&pack_dir) {
        Ok(e) => e,
        Err(_) => return Ok(()),
    };
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let grave: PathBuf = repo.join("objects").join(GRAVEYARD).join(stamp.to_string());
    let mut made = false;
    for e in entries.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if !n.starts_with("pack-") {
            continue;
        }
        if !made {
            std::fs::create_dir_all(&grave)
                .map_err(io_err(format!("cannot create {}", grave.display())))?;
            made = true;
        }
        // A pack that vanished meanwhile (another repack) needs no keeping.
        let _ = std::fs::hard_link(e.path(), grave.join(&name));
    }
    Ok(())
}

/// Removes graveyard folders older than `grace`; returns how many.
fn remove_old_graveyards(repo: &Path, grace: Duration) -> Result<usize> {
    let dir = repo.join("objects").join(GRAVEYARD);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut removed = 0;
    for e in entries.flatten() {
        let Ok(stamp) = e.file_name().to_string_lossy().parse::<u128>() else {
            continue;
        };
        if now.saturating_sub(stamp) >= grace.as_millis() {
            std::fs::remove_dir_all(e.path())
                .map_err(io_err(format!("cannot remove {}", e.path().display())))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn the_summary_says_what_happened_and_why_the_size_grew() {
        let r = MaintainReport {
            full: true,
            before: ObjectCounts {
                packs: 3,
                loose: 12,
                size_kib: 2,
            },
            after: ObjectCounts {
                packs: 1,
                loose: 1,
                size_kib: 5,
            },
            graveyards_removed: 2,
            grace: Duration::from_secs(3600),
        };
        assert_eq!(
            r.summary(),
            "repacked everything into 1 pack (was 3 packs and 12 loose objects); packed size 5 KiB (was 2 KiB), \
             larger by the new reachability bitmap and indexes; 1 unreachable objects stay loose until they are two \
             weeks old (a push in progress may still need them); the packs replaced are kept for 1h for readers that \
             still have them open (2 older sets of them removed)"
        );
    }
}
