//! `kura repo import`: a repository with every branch and tag of another Git server's, or
//! nothing at all.

use kura_db::Repo;
use kura_git::import::{RemoteRefs, Source};

use super::{Maintained, Ops, OpsError, Result};
use crate::names::RepoPath;

pub struct ImportRequest<'a> {
    pub source: Source,
    /// For a repository the import creates.
    pub public: bool,
    /// Let git show its progress on this process's stderr.
    pub progress: bool,
    /// Called with each step, for the person watching.
    pub say: &'a (dyn Fn(&str) + Sync),
}

pub struct Imported {
    pub repo: Repo,
    pub branches: usize,
    pub tags: usize,
    /// What maintenance did afterwards, or why it did not run.
    pub maintenance: String,
    /// Mirrors queued to receive the imported refs.
    pub mirrors: usize,
}

impl Ops {
    pub async fn import_repo(&self, path: &RepoPath, req: ImportRequest<'_>) -> Result<Imported> {
        kura_git::import::check_url(&req.source.url).map_err(OpsError::Invalid)?;
        if kura_git::import::is_shallow_path(&req.source.url) {
            return Err(OpsError::ImportFailed(format!(
                "{} is a shallow clone (its history is cut off): import from the full repository, or run git fetch --unshallow there first",
                req.source.url
            )));
        }
        let existing = self.find_repo(path).await?;
        if let Some(repo) = &existing {
            let refs = self.store.refs(repo.id, &[]).await?;
            if !refs.is_empty() {
                return Err(OpsError::Invalid(format!(
                    "{path} already has {} branches or tags: import only into a new or empty repository (choose another name, or delete it first)",
                    refs.len()
                )));
            }
        }
        if existing.is_none() && self.db.namespace_by_name(&path.namespace).await?.is_none() {
            return Err(OpsError::NamespaceNotFound(path.namespace.clone()));
        }
        (req.say)(&format!("reading the refs of {}", req.source.url));
        let remote = self
            .store
            .remote_refs(&req.source)
            .await
            .map_err(|e| source_failed(&req.source, e))?;
        let branches = remote.branches().count();
        let tags = remote.tag_count();
        (req.say)(&format!(
            "{}: {branches} branches, {tags} tags{}",
            req.source.url,
            remote
                .head
                .as_deref()
                .map(|h| format!(", HEAD {h}"))
                .unwrap_or_default()
        ));
        let (repo, created) = match existing {
            Some(r) => (r, false),
            None => {
                let branch = default_branch(&remote, None);
                let r = self.create_repo(path, req.public, Some(&branch)).await?;
                (r, true)
            }
        };
        if !remote.refs.is_empty() {
            (req.say)(&format!("fetching into {path}"));
            let fetched = self
                .store
                .fetch_all(repo.id, &req.source, req.progress)
                .await
                .map_err(|e| source_failed(&req.source, e));
            // git exits 0 even when it refused some refs (a shallow source, say): every ref the
            // source listed must be here, or the import is undone.
            let outcome = match fetched {
                Ok(()) => {
                    let got = self.store.refs(repo.id, &[]).await?;
                    let missing: Vec<&str> = remote
                        .refs
                        .keys()
                        .filter(|r| !got.contains_key(*r))
                        .map(String::as_str)
                        .collect();
                    if missing.is_empty() {
                        Ok(())
                    } else {
                        Err(OpsError::ImportFailed(format!(
                            "importing from {} failed: git did not take {} of the source's refs ({}{}); a shallow source (a clone with its history cut off) is one reason: import from the full repository",
                            req.source.url,
                            missing.len(),
                            missing[..missing.len().min(5)].join(", "),
                            if missing.len() > 5 { ", ..." } else { "" }
                        )))
                    }
                }
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                self.undo_import(path, &repo, created).await;
                return Err(e);
            }
        }
        let branch = default_branch(&remote, Some(&repo.default_branch));
        if branch != repo.default_branch
            && remote.refs.contains_key(&format!("refs/heads/{branch}"))
        {
            self.update_repo(&repo, None, Some(&branch)).await?;
        }
        let repo = self.repo(path).await?;
        let maintenance = if remote.refs.is_empty() {
            "nothing to pack".to_string()
        } else {
            (req.say)(&format!("packing {path} for serving"));
            match self
                .maintain(&repo, true, crate::maintenance::PACK_GRACE)
                .await
            {
                Ok(Maintained::Done { summary, .. }) => summary,
                Ok(Maintained::Busy) => "left to the server (another process maintains it)".into(),
                Err(e) => format!("failed ({e}); kura serve retries it on its schedule"),
            }
        };
        let mirrors = self.mirrors_of(&repo).await?;
        for m in &mirrors {
            self.sync_mirror(m).await?;
        }
        Ok(Imported {
            repo,
            branches,
            tags,
            maintenance,
            mirrors: mirrors.len(),
        })
    }
}

impl Ops {
    /// A failed import leaves nothing: the repository it made goes, or the refs it wrote into
    /// an empty one do.
    async fn undo_import(&self, path: &RepoPath, repo: &Repo, created: bool) {
        let undone = if created {
            self.delete_repo(path).await.map(|_| ())
        } else {
            match self.store.refs(repo.id, &[]).await {
                Ok(refs) => {
                    let names: Vec<String> = refs.into_keys().collect();
                    self.store
                        .delete_refs(repo.id, &names)
                        .await
                        .map_err(Into::into)
                }
                Err(e) => Err(e.into()),
            }
        };
        if let Err(e) = undone {
            tracing::warn!(error = %e, repo = %path, "cannot undo a failed import");
        }
    }
}

/// The branch clones should check out: the source's HEAD, else `current`, `main` or `master`
/// when the source has it, else its first branch.
fn default_branch(remote: &RemoteRefs, current: Option<&str>) -> String {
    let has = |b: &str| remote.refs.contains_key(&format!("refs/heads/{b}"));
    remote
        .head
        .iter()
        .map(String::as_str)
        .chain(current)
        .chain(["main", "master"])
        .find(|b| has(b))
        .or_else(|| remote.branches().next())
        .or(current)
        .unwrap_or("main")
        .to_string()
}

/// git's complaint about the source in words: what to check.
fn source_failed(src: &Source, e: kura_git::GitError) -> OpsError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let hint = if lower.contains("authentication failed")
        || lower.contains("could not read username")
        || lower.contains("403")
        || lower.contains("401")
    {
        if src.username.is_some() {
            "the source refused the user name and password: check --username and the password on stdin (for GitLab, a personal or project access token with read_repository)"
        } else {
            "the source wants credentials: give --username and --password-stdin (for GitLab, a personal or project access token with read_repository)"
        }
    } else if lower.contains("could not resolve host") {
        "the source's host name does not resolve from here: check the URL"
    } else if lower.contains("not found")
        || lower.contains("does not appear to be a git repository")
        || lower.contains("404")
    {
        "the source has no repository at that URL (or hides it from this user): check the URL"
    } else if lower.contains("connection refused")
        || lower.contains("timed out")
        || lower.contains("failed to connect")
    {
        "the source does not answer: check the host and port, and that this machine may reach it"
    } else if lower.contains("not our ref")
        || lower.contains("bad object")
        || lower.contains("missing")
        || lower.contains("did not send all necessary objects")
    {
        "the source could not send every object its refs need (a broken or incomplete repository there?); run git fsck on it"
    } else {
        "see git's message"
    };
    OpsError::ImportFailed(format!(
        "importing from {} failed: {hint} ({text})",
        src.url
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(head: Option<&str>, branches: &[&str]) -> RemoteRefs {
        RemoteRefs {
            head: head.map(String::from),
            refs: branches
                .iter()
                .map(|b| (format!("refs/heads/{b}"), "1".repeat(40)))
                .collect(),
        }
    }

    #[test]
    fn the_default_branch_follows_the_source() {
        assert_eq!(
            default_branch(&remote(Some("develop"), &["develop", "main"]), Some("main")),
            "develop"
        );
        assert_eq!(
            default_branch(&remote(None, &["main", "x"]), Some("trunk")),
            "main"
        );
        assert_eq!(
            default_branch(&remote(None, &["trunk", "x"]), Some("trunk")),
            "trunk"
        );
        assert_eq!(default_branch(&remote(None, &["b", "a"]), None), "a");
        assert_eq!(
            default_branch(&remote(Some("gone"), &[]), Some("main")),
            "main"
        );
    }
}
