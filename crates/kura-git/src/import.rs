//! Copying a whole repository in from another Git server (`kura repo import`): read the
//! source's refs, then fetch every branch and tag in one atomic ref transaction.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use crate::{io_err, GitError, RepoStore, Result};

/// Where to import from, and how to sign in there.
#[derive(Clone)]
pub struct Source {
    /// `https://…`, `http://…`, `file://…` or an absolute local path; no credentials in it.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The source's branches and tags, and the branch its HEAD names.
#[derive(Debug, Default)]
pub struct RemoteRefs {
    pub head: Option<String>,
    pub refs: BTreeMap<String, String>,
}

impl RemoteRefs {
    pub fn branches(&self) -> impl Iterator<Item = &str> {
        self.refs
            .keys()
            .filter_map(|r| r.strip_prefix("refs/heads/"))
    }
    pub fn tag_count(&self) -> usize {
        self.refs
            .keys()
            .filter(|r| r.starts_with("refs/tags/"))
            .count()
    }
}

/// Checks an import URL: a web URL without credentials, or a local repository path.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let url = url.trim();
    if url.is_empty() {
        return Err(
            "no source: give --from URL (https://host/group/project.git or a local path)".into(),
        );
    }
    if url.starts_with('/') {
        return Ok(());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "{url:?} is neither an http(s):// URL nor an absolute path: write https://host/group/project.git or /path/to/repo.git"
        ));
    };
    if !matches!(scheme, "https" | "http" | "file") {
        return Err(format!(
            "{scheme}:// sources are not imported: use an https:// (or http://) URL, or a local path"
        ));
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "the URL holds a user name or password: give the user name with --username and the password (or token) on stdin with --password-stdin, out of argv and shell history"
                .into(),
        );
    }
    if scheme != "file" && authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

/// Whether a local source is a shallow clone (its history cut off): such a source cannot be
/// imported, since git leaves out the refs whose history it would have to cut.
pub fn is_shallow_path(url: &str) -> bool {
    let path = url.strip_prefix("file://").unwrap_or(url);
    if !path.starts_with('/') {
        return false;
    }
    let p = std::path::Path::new(path);
    p.join("shallow").is_file() || p.join(".git/shallow").is_file()
}

/// How long an import may run in all, and how long it may move less than 1 KiB/s.
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
const STALL_SECS: &str = "120";

impl RepoStore {
    /// git talking to `src`: only the protocols an import may use, credentials only through
    /// Kura's helper and only for the source's own protocol and host.
    fn source_git(&self, src: &Source) -> tokio::process::Command {
        let mut cmd = self.git();
        cmd.env("GIT_ALLOW_PROTOCOL", "http:https:file")
            .args(["-c", "credential.helper=", "-c", "http.lowSpeedLimit=1000"])
            .arg("-c")
            .arg(format!("http.lowSpeedTime={STALL_SECS}"));
        if let Some(user) = &src.username {
            let exe = self.hook_exe().to_string_lossy().replace('\'', "'\\''");
            cmd.arg("-c")
                .arg(format!("credential.helper=!'{exe}' credential-helper env"))
                .env("KURA_MIRROR_USERNAME", user)
                .env(
                    "KURA_MIRROR_PASSWORD",
                    src.password.as_deref().unwrap_or(""),
                )
                .env("KURA_MIRROR_URL", &src.url);
        }
        cmd.kill_on_drop(true);
        cmd
    }

    /// The source's refs (`ls-remote --symref`): checks that it answers and lets us in before
    /// anything is created.
    pub async fn remote_refs(&self, src: &Source) -> Result<RemoteRefs> {
        let mut cmd = self.source_git(src);
        cmd.args([
            "ls-remote",
            "--symref",
            &src.url,
            "HEAD",
            "refs/heads/*",
            "refs/tags/*",
        ])
        .stdin(Stdio::null());
        let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
            .await
            .map_err(|_| GitError::Git {
                what: "ls-remote".into(),
                stderr: "the source did not answer within 300 s".into(),
            })?
            .map_err(io_err("cannot run git ls-remote"))?;
        if !out.status.success() {
            return Err(GitError::Git {
                what: "ls-remote".into(),
                stderr: last_lines(&out.stderr),
            });
        }
        let (refs, head) = parse_ls_remote(&String::from_utf8_lossy(&out.stdout));
        let r = RemoteRefs {
            head: head.and_then(|h| h.strip_prefix("refs/heads/").map(String::from)),
            refs,
        };
        Ok(r)
    }

    /// Fetches every branch and tag of `src` into repository `id`, all refs in one transaction
    /// (none on failure) and never over a ref that exists. With `progress`, git's progress
    /// goes to this process's stderr.
    pub async fn fetch_all(&self, id: i64, src: &Source, progress: bool) -> Result<()> {
        let mut cmd = self.source_git(src);
        cmd.arg("--git-dir")
            .arg(self.path_of(id))
            .args(["fetch", "--atomic", "--no-write-fetch-head", "--no-tags"])
            .arg(if progress { "--progress" } else { "--quiet" })
            .arg(&src.url)
            .args(["refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if progress {
            cmd.stderr(Stdio::inherit());
        } else {
            cmd.stderr(Stdio::piped());
        }
        let child = cmd.spawn().map_err(io_err("cannot run git fetch"))?;
        let out = tokio::time::timeout(IMPORT_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| GitError::Git {
                what: "fetch".into(),
                stderr: format!("stopped after {} h", IMPORT_TIMEOUT.as_secs() / 3600),
            })?
            .map_err(io_err("cannot wait for git fetch"))?;
        if !out.status.success() {
            return Err(GitError::Git {
                what: "fetch".into(),
                stderr: if progress {
                    "see git's messages above".into()
                } else {
                    last_lines(&out.stderr)
                },
            });
        }
        Ok(())
    }

    /// Deletes the named refs of repository `id` in one transaction (undoing an import).
    pub async fn delete_refs(&self, id: i64, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut input = String::from("start\n");
        for n in names {
            input.push_str(&format!("delete {n}\n"));
        }
        input.push_str("commit\n");
        let out = self
            .git_with_input(id, &["update-ref", "--stdin"], &input)
            .await?;
        if !out.status.success() {
            return Err(GitError::Git {
                what: "update-ref".into(),
                stderr: last_lines(&out.stderr),
            });
        }
        Ok(())
    }

    /// Runs git in repository `id` with `input` on its stdin; its output, whatever the status.
    pub(crate) async fn git_with_input(
        &self,
        id: i64,
        args: &[&str],
        input: &str,
    ) -> Result<std::process::Output> {
        use tokio::io::AsyncWriteExt;
        let what = args.first().copied().unwrap_or("git");
        let mut child = self
            .git()
            .arg("--git-dir")
            .arg(self.path_of(id))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err(format!("cannot run git {what}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .await
                .map_err(io_err(format!("cannot write to git {what}")))?;
        }
        child
            .wait_with_output()
            .await
            .map_err(io_err(format!("cannot wait for git {what}")))
    }

    /// The refs of repository `id` matching `patterns` (all when empty): name to object id.
    pub async fn refs(&self, id: i64, patterns: &[String]) -> Result<BTreeMap<String, String>> {
        let out = self
            .git()
            .arg("--git-dir")
            .arg(self.path_of(id))
            .args(["for-each-ref", "--format=%(refname) %(objectname)"])
            .args(patterns)
            .output()
            .await
            .map_err(io_err("cannot run git for-each-ref"))?;
        if !out.status.success() {
            return Err(GitError::Git {
                what: "for-each-ref".into(),
                stderr: last_lines(&out.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, o)| (n.to_string(), o.to_string()))
            .collect())
    }
}

/// `git ls-remote --symref` output: the refs (peeled `^{}` lines and HEAD left out) and the
/// ref HEAD names. Also read by the mirrors.
pub fn parse_ls_remote(text: &str) -> (BTreeMap<String, String>, Option<String>) {
    let mut head = None;
    let mut refs = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("ref: ") {
            if let Some((target, "HEAD")) = rest.split_once('\t') {
                head = Some(target.to_string());
            }
            continue;
        }
        if let Some((oid, name)) = line.split_once('\t') {
            if name != "HEAD" && !name.ends_with("^{}") {
                refs.insert(name.to_string(), oid.to_string());
            }
        }
    }
    (refs, head)
}

/// The last few meaningful lines of git's stderr, on one line (no progress, no hints).
fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
        .collect();
    lines[lines.len().saturating_sub(4)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        for ok in [
            "https://gitlab.corp.example/team/app.git",
            "http://127.0.0.1:8080/app.git",
            "/srv/git/app.git",
            "file:///srv/git/app.git",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("https://alice:secret@gitlab/app.git", "--username"),
            ("https://oauth2@gitlab/app.git", "--password-stdin"),
            ("ext::sh -c touch% /tmp/x", "neither"),
            ("ssh://git@host/app.git", "ssh:// sources are not imported"),
            ("app.git", "neither"),
            ("https:///app.git", "no host"),
            ("", "no source"),
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn stderr_keeps_the_last_lines() {
        let e = last_lines(b"hint: x\nremote: Counting\rremote: done\nfatal: Authentication failed for 'https://h/a.git/'\n");
        assert_eq!(
            e,
            "remote: Counting / remote: done / fatal: Authentication failed for 'https://h/a.git/'"
        );
    }
}
