use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::{io_err, GitError, Result};

/// The two smart-HTTP services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitService {
    UploadPack,
    ReceivePack,
}

impl GitService {
    pub fn from_name(s: &str) -> Option<GitService> {
        match s {
            "git-upload-pack" => Some(GitService::UploadPack),
            "git-receive-pack" => Some(GitService::ReceivePack),
            _ => None,
        }
    }
    /// `git-upload-pack` / `git-receive-pack`, as in URLs and content types.
    pub fn name(self) -> &'static str {
        match self {
            GitService::UploadPack => "git-upload-pack",
            GitService::ReceivePack => "git-receive-pack",
        }
    }
    fn subcommand(self) -> &'static str {
        match self {
            GitService::UploadPack => "upload-pack",
            GitService::ReceivePack => "receive-pack",
        }
    }
}

/// How to run one service request.
pub struct ServiceRequest<'a> {
    pub repo_id: i64,
    pub service: GitService,
    pub advertise_refs: bool,
    /// The client's `Git-Protocol` header, already validated.
    pub protocol: Option<&'a str>,
    /// Extra environment for hooks (the push policy).
    pub hook_env: Vec<(&'static str, String)>,
    /// Run `post-receive` too (the server wants to hear about the push).
    pub report_push: bool,
    /// Where `pre-receive` notes the accepted updates (pushes that do not report back).
    pub push_log: Option<&'a Path>,
}

/// Repositories under one root, named by id: `<root>/ab/cd/<id>.git`.
#[derive(Debug, Clone)]
pub struct RepoStore {
    pub(crate) root: PathBuf,
    hooks_dir: PathBuf,
    git_home: PathBuf,
    hook_exe: PathBuf,
}

/// Hook sets: every push is checked (`pre-receive`, which also notes the accepted updates for
/// the push log); pushes to repositories with something to do afterwards (mirrors) also report
/// back (`post-receive`), and the server waits for the mirrors and tells the pusher. Separate
/// folders, so that other pushes do not start a second hook.
const HOOK_SETS: [(&str, &[&str]); 2] = [
    ("hooks", &["pre-receive"]),
    ("hooks-report", &["pre-receive", "post-receive"]),
];

impl RepoStore {
    /// Prepares `<data_dir>/repositories`, the hook directory and an empty HOME for git.
    /// `hook_exe` is the `kura` binary the hook shims run.
    pub fn open(data_dir: &Path, hook_exe: PathBuf) -> Result<RepoStore> {
        // Created owner-only: the folder holds the database (password hashes) and every
        // repository.
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
        }
        .map_err(io_err(format!("cannot create {}", data_dir.display())))?;
        // git runs inside the repository: every path handed to it must be absolute.
        let data_dir = &std::fs::canonicalize(data_dir)
            .map_err(io_err(format!("cannot resolve {}", data_dir.display())))?;
        let store = RepoStore {
            root: data_dir.join("repositories"),
            hooks_dir: data_dir.join("hooks"),
            git_home: data_dir.join("git-home"),
            hook_exe,
        };
        for dir in [&store.root, &store.root.join("tmp"), &store.git_home] {
            std::fs::create_dir_all(dir)
                .map_err(io_err(format!("cannot create {}", dir.display())))?;
        }
        store.write_hooks()?;
        Ok(store)
    }

    /// A fresh path for the updates one push to repository `repo_id` accepted (outside every
    /// repository; the id in the name lets a note left by a crash be recovered).
    pub fn push_log_path(&self, repo_id: i64) -> PathBuf {
        use rand::distributions::{Alphanumeric, DistString};
        let name = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
        self.root
            .join("tmp")
            .join(format!("push-{repo_id}-{name}.log"))
    }

    /// Notes of pushes older than `age` (their process died before recording them), each
    /// claimed by renaming it first, so that of several processes sharing the folder only
    /// one recovers it. Returns the repository id and the claimed path.
    pub fn claim_orphaned_push_notes(&self, age: std::time::Duration) -> Vec<(i64, PathBuf)> {
        let dir = self.root.join("tmp");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_prefix("push-")
                .and_then(|r| r.strip_suffix(".log"))
                .and_then(|r| r.split_once('-'))
                .and_then(|(id, _)| id.parse::<i64>().ok())
            else {
                continue;
            };
            let old_enough = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|el| el >= age);
            if !old_enough {
                continue;
            }
            let claimed = dir.join(format!("{name}.recovering-{}", crate::unique_suffix()));
            if std::fs::rename(e.path(), &claimed).is_ok() {
                out.push((id, claimed));
            }
        }
        out
    }

    /// Removes the lock files of repository `id` (`refs/**.lock`, `packed-refs.lock`, and the
    /// `*.lock` files of the top folder, `objects/pack` and `objects/info`, and `gc.pid`). Only
    /// for a repository nobody can be writing: a replica taking over the write lease from one
    /// whose lease ran out (a killed process leaves its locks, and git then refuses updates).
    /// Returns the paths removed, relative to the repository.
    pub fn remove_stale_locks(&self, id: i64) -> Vec<PathBuf> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>, depth: usize) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                if is_dir && depth > 0 {
                    walk(&p, base, out, depth - 1);
                } else if !is_dir
                    && p.extension().is_some_and(|x| x == "lock")
                    && std::fs::remove_file(&p).is_ok()
                {
                    out.push(p.strip_prefix(base).unwrap_or(&p).to_path_buf());
                }
            }
        }
        let repo = self.path_of(id);
        let mut out = Vec::new();
        walk(&repo.join("refs"), &repo, &mut out, 32);
        for dir in [
            repo.clone(),
            repo.join("objects/pack"),
            repo.join("objects/info"),
        ] {
            walk(&dir, &repo, &mut out, 0);
        }
        walk(&repo.join("objects/info/commit-graphs"), &repo, &mut out, 0);
        if std::fs::remove_file(repo.join("gc.pid")).is_ok() {
            out.push("gc.pid".into());
        }
        out
    }

    /// Removes what interrupted creations, deletions and readiness probes left in `tmp/`
    /// (their names are unique, so nothing reuses them); only entries older than `age`, so no
    /// operation in flight in any replica loses its folder. Returns how many went.
    pub fn sweep_tmp(&self, age: std::time::Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("new-")
                || name.starts_with("deleted-")
                || name.starts_with(".ready-"))
            {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let old_enough = meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|el| el >= age);
            if !old_enough {
                continue;
            }
            let gone = if meta.is_dir() {
                std::fs::remove_dir_all(e.path())
            } else {
                std::fs::remove_file(e.path())
            };
            if gone.is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// The `kura` binary (for hooks and Kura's credential helper).
    pub fn hook_exe(&self) -> &Path {
        &self.hook_exe
    }

    /// The directory of repository `id`. Only the id decides it, never a name.
    pub fn path_of(&self, id: i64) -> PathBuf {
        let digest = hex::encode(Sha256::digest(id.to_string().as_bytes()));
        self.root
            .join(&digest[0..2])
            .join(&digest[2..4])
            .join(format!("{id}.git"))
    }

    /// The shims are static: the binary comes from `KURA_HOOK_EXE` in the push's environment,
    /// so replicas sharing this folder never fight over its content.
    fn write_hooks(&self) -> Result<()> {
        for (set, names) in HOOK_SETS {
            let dir = self.hooks_dir.with_file_name(set);
            std::fs::create_dir_all(&dir)
                .map_err(io_err(format!("cannot create {}", dir.display())))?;
            for name in names.iter() {
                let path = dir.join(name);
                let body = format!("#!/bin/sh\nexec \"$KURA_HOOK_EXE\" hook {name}\n");
                if std::fs::read_to_string(&path).ok().as_deref() != Some(body.as_str()) {
                    let tmp = dir.join(format!(".{name}.{}", crate::unique_suffix()));
                    std::fs::write(&tmp, &body)
                        .map_err(io_err(format!("cannot write {}", tmp.display())))?;
                    set_executable(&tmp)?;
                    std::fs::rename(&tmp, &path)
                        .map_err(io_err(format!("cannot write {}", path.display())))?;
                }
            }
            if !names.contains(&"post-receive") {
                // Left by an older layout: must not run for every push.
                let _ = std::fs::remove_file(dir.join("post-receive"));
            }
        }
        Ok(())
    }

    /// A `git` command with the hardened environment: nothing inherited but PATH, no system or
    /// global config, an empty HOME, and Kura's hooks.
    pub fn git(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", &self.git_home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .arg("-c")
            .arg(format!("core.hooksPath={}", self.hooks_dir.display()))
            .args([
                "-c",
                "safe.directory=*",
                "-c",
                "receive.fsckObjects=true",
                "-c",
                "uploadpack.allowFilter=true",
                "-c",
                "uploadpack.allowAnySHA1InWant=false",
                "-c",
                "core.logAllRefUpdates=false",
                // Maintenance is Kura's job (kura-git::maintenance), never a push's.
                "-c",
                "receive.autogc=false",
                "-c",
                "gc.auto=0",
                "-c",
                "maintenance.auto=false",
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// The `git upload-pack|receive-pack --stateless-rpc` child for one HTTP request; stdin,
    /// stdout and stderr are piped.
    pub fn service(&self, req: &ServiceRequest<'_>) -> Command {
        let mut cmd = self.git();
        // Options before the subcommand; a later -c wins over the default hooks folder.
        if req.report_push {
            cmd.arg("-c").arg(format!(
                "core.hooksPath={}",
                self.hooks_dir.with_file_name("hooks-report").display()
            ));
        }
        cmd.arg(req.service.subcommand()).arg("--stateless-rpc");
        if req.advertise_refs {
            cmd.arg("--advertise-refs");
        }
        cmd.arg(self.path_of(req.repo_id));
        if let Some(p) = req.protocol {
            cmd.env("GIT_PROTOCOL", p);
        }
        cmd.env("KURA_HOOK_EXE", &self.hook_exe);
        for (k, v) in &req.hook_env {
            cmd.env(k, v);
        }
        if let Some(p) = req.push_log {
            cmd.env(crate::hook::PUSH_LOG_ENV, p);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Creates an empty bare repository for `id`, atomically: built in `tmp/`, then renamed.
    pub async fn create(&self, id: i64, default_branch: &str) -> Result<()> {
        let final_path = self.path_of(id);
        if final_path.exists() {
            // The id is fresh from the database, so this is what a create interrupted before its
            // commit left behind (SQLite reuses a rolled-back id). Keep it aside, never serve it.
            let aside = self.root.join("tmp").join(format!(
                "orphan-{id}-{}-{}",
                crate::unique_suffix(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0)
            ));
            tracing::warn!(path = %final_path.display(), aside = %aside.display(), "moving aside a leftover repository directory");
            tokio::fs::rename(&final_path, &aside)
                .await
                .map_err(io_err(format!(
                    "cannot move {} aside",
                    final_path.display()
                )))?;
        }
        let tmp = self
            .root
            .join("tmp")
            .join(format!("new-{id}-{}", crate::unique_suffix()));
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        let out = self
            .git()
            .args(["init", "--bare", "--quiet", "--template="])
            .arg(format!("--initial-branch={default_branch}"))
            .arg(&tmp)
            .output()
            .await
            .map_err(io_err("cannot run git init"))?;
        if !out.status.success() {
            return Err(GitError::Git {
                what: "init".into(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        if let Some(parent) = final_path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_err(format!("cannot create {}", parent.display())))?;
        }
        tokio::fs::rename(&tmp, &final_path)
            .await
            .map_err(io_err(format!(
                "cannot move repository to {}",
                final_path.display()
            )))?;
        Ok(())
    }

    /// Points HEAD at another branch (the repository's default branch).
    pub async fn set_head(&self, id: i64, branch: &str) -> Result<()> {
        let out = self
            .git()
            .arg("--git-dir")
            .arg(self.path_of(id))
            .args(["symbolic-ref", "HEAD"])
            .arg(format!("refs/heads/{branch}"))
            .output()
            .await
            .map_err(io_err("cannot run git symbolic-ref"))?;
        if !out.status.success() {
            return Err(GitError::Git {
                what: "symbolic-ref".into(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Removes repository `id`: first moved aside (so a half-deleted tree is never served), then
    /// deleted.
    pub async fn remove(&self, id: i64) -> Result<()> {
        let path = self.path_of(id);
        if !path.exists() {
            return Ok(());
        }
        let aside = self
            .root
            .join("tmp")
            .join(format!("deleted-{id}-{}", crate::unique_suffix()));
        tokio::fs::rename(&path, &aside)
            .await
            .map_err(io_err(format!("cannot move {} aside", path.display())))?;
        tokio::fs::remove_dir_all(&aside)
            .await
            .map_err(io_err(format!("cannot remove {}", aside.display())))?;
        Ok(())
    }

    /// For readiness: the root is a directory we can write to.
    pub async fn check_writable(&self) -> Result<()> {
        let probe = self
            .root
            .join("tmp")
            .join(format!(".ready-{}", crate::unique_suffix()));
        tokio::fs::write(&probe, b"ok")
            .await
            .map_err(io_err(format!("cannot write to {}", self.root.display())))?;
        let _ = tokio::fs::remove_file(&probe).await;
        Ok(())
    }
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("cannot make {} executable", path.display())))
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_depend_on_id_only() {
        let store = RepoStore {
            root: PathBuf::from("/data/repositories"),
            hooks_dir: PathBuf::from("/data/hooks"),
            git_home: PathBuf::from("/data/git-home"),
            hook_exe: PathBuf::from("/bin/kura"),
        };
        let p = store.path_of(1);
        // sha256("1") = 6b86b273...
        assert_eq!(p, PathBuf::from("/data/repositories/6b/86/1.git"));
        assert_ne!(store.path_of(2), p);
    }
}
