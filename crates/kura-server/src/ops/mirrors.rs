//! Push mirrors: adding, listing, removing and syncing them, and their status (computed here
//! once for the CLI, the API and `/metrics`).

use kura_db::{Mirror, Pending, Queued, Repo};
use kura_mirror::{RunResult, Target};
use tokio::sync::watch;

use super::{Ops, OpsError, Result};
use crate::names::RepoPath;

/// What `kura mirror add` / `POST .../mirrors` asks for.
pub struct MirrorRequest<'a> {
    pub url: &'a str,
    pub create: bool,
    pub branches: &'a [String],
    pub keep_divergent: bool,
    pub username: Option<&'a str>,
    pub password: Option<String>,
}

/// How far a delivery target is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// Pushes (and sync requests) not yet delivered.
    pub pending: i64,
    /// Seconds since the oldest undelivered push; 0 when up to date.
    pub lag_seconds: i64,
    /// When the next attempt is due, while something is pending.
    pub next_attempt_at: Option<i64>,
}

impl DeliveryStatus {
    pub fn of(m: &Mirror, p: Pending, now: i64) -> DeliveryStatus {
        DeliveryStatus::new(m.next_attempt_at, p, now)
    }

    /// For any delivery target: its next attempt and what is pending.
    pub fn new(next_attempt_at: i64, p: Pending, now: i64) -> DeliveryStatus {
        DeliveryStatus {
            pending: p.count,
            lag_seconds: p.oldest_created_at.map(|t| (now - t).max(0)).unwrap_or(0),
            next_attempt_at: (p.count > 0).then_some(next_attempt_at.max(now)),
        }
    }
}

impl Ops {
    pub async fn add_mirror(&self, path: &RepoPath, req: MirrorRequest<'_>) -> Result<Mirror> {
        let repo = self.repo(path).await?;
        let target = Target::parse(req.url).map_err(|e| OpsError::Invalid(e.to_string()))?;
        let refuse = |m: &str| Err(OpsError::Invalid(m.to_string()));
        match (&target, req.username, &req.password) {
            (Target::CodeCommit { .. }, Some(_), _) | (Target::CodeCommit { .. }, _, Some(_)) => {
                return refuse("CodeCommit mirrors take no user name or password: Kura signs with the AWS credentials of its task role")
            }
            (Target::Git { .. }, None, Some(_)) => return refuse("a password needs a user name"),
            (Target::Git { url }, _, Some(_))
                if url.starts_with("http://") && !kura_mirror::is_loopback_url(url) =>
            {
                return refuse("a password would cross the network in clear text over http://: use https://")
            }
            (Target::Git { .. }, _, _) if req.create => {
                return refuse("creating the remote repository works only for codecommit:// mirrors")
            }
            _ => {}
        }
        for g in req.branches {
            if glob::Pattern::new(g).is_err() || g.is_empty() {
                return Err(OpsError::Invalid(format!(
                    "{g:?} is not a branch glob: write e.g. main or release/*"
                )));
            }
        }
        let sealed = match &req.password {
            Some(p) => Some(
                self.worker
                    .settings()
                    .secrets
                    .seal(p)
                    .map_err(|e| OpsError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        let id = self
            .db
            .add_mirror(
                &kura_db::NewMirror {
                    repo_id: repo.id,
                    url: req.url,
                    branches: req.branches,
                    keep_divergent: req.keep_divergent,
                    create_remote: req.create,
                    username: req.username,
                    secret: sealed.as_deref(),
                },
                &repo.full_name(),
            )
            .await?;
        // The first run copies what the repository already has.
        self.db.enqueue_delivery(id).await?;
        self.worker.kick();
        self.db
            .mirror_by_id(id)
            .await?
            .ok_or_else(|| OpsError::Internal("mirror vanished after creation".into()))
    }

    /// Mirrors of one repository, or of all when `path` is `None`.
    pub async fn mirrors(&self, path: Option<&RepoPath>) -> Result<Vec<Mirror>> {
        let repo_id = match path {
            Some(p) => Some(self.repo(p).await?.id),
            None => None,
        };
        Ok(self.db.mirrors(repo_id).await?)
    }

    pub async fn mirrors_of(&self, repo: &Repo) -> Result<Vec<Mirror>> {
        Ok(self.db.mirrors(Some(repo.id)).await?)
    }

    pub async fn mirror_by_id(&self, id: i64) -> Result<Option<Mirror>> {
        Ok(self.db.mirror_by_id(id).await?)
    }

    /// One mirror of the repository: by id or URL, or the only one.
    pub async fn mirror(&self, path: &RepoPath, which: Option<&str>) -> Result<Mirror> {
        let repo = self.repo(path).await?;
        let all = self.db.mirrors(Some(repo.id)).await?;
        let name = repo.full_name();
        match which {
            Some(w) => all
                .into_iter()
                .find(|m| m.url == w || m.id.to_string() == w)
                .ok_or_else(|| OpsError::MirrorNotFound {
                    repo: name,
                    which: w.to_string(),
                }),
            None if all.len() == 1 => Ok(all.into_iter().next().expect("one mirror")),
            None if all.is_empty() => Err(OpsError::NoMirror(name)),
            None => Err(OpsError::AmbiguousMirror {
                repo: name,
                count: all.len(),
            }),
        }
    }

    pub async fn remove_mirror(&self, path: &RepoPath, which: Option<&str>) -> Result<Mirror> {
        let m = self.mirror(path, which).await?;
        self.db.remove_target(m.id).await?;
        Ok(m)
    }

    /// Queues a run now; returns the delivery id.
    pub async fn sync_mirror(&self, m: &Mirror) -> Result<i64> {
        let job = self.db.enqueue_delivery(m.id).await?;
        self.worker.kick();
        Ok(job)
    }

    /// Queues a run of every mirror of the repository (a push whose report never arrived).
    pub async fn sync_all_mirrors(&self, repo_id: i64) -> Result<()> {
        for m in self.db.mirrors(Some(repo_id)).await? {
            self.db.enqueue_delivery(m.id).await?;
        }
        self.worker.kick();
        Ok(())
    }

    /// Runs the mirror here and now if it has pending work and nobody else runs it.
    pub async fn run_mirror_now(&self, m: &Mirror) -> Option<RunResult> {
        self.worker.run_now(m.id).await
    }

    pub async fn mirror_status(&self, m: &Mirror) -> Result<DeliveryStatus> {
        let p = self.db.pending(m.id).await?;
        Ok(DeliveryStatus::of(m, p, kura_db::now()))
    }

    /// Every mirror with its status (for `/metrics`).
    pub async fn all_mirror_statuses(&self) -> Result<Vec<(Mirror, DeliveryStatus)>> {
        let now = kura_db::now();
        let mut out = Vec::new();
        for m in self.db.mirrors(None).await? {
            let p = self.db.pending(m.id).await?;
            let s = DeliveryStatus::of(&m, p, now);
            out.push((m, s));
        }
        Ok(out)
    }

    /// Whether the delivery is done (a vanished one counts as done).
    pub async fn delivered(&self, q: Queued) -> Result<bool> {
        let done = self.db.deliveries_done(&[q.delivery_id]).await?;
        Ok(done.first().is_some_and(|(_, d)| *d))
    }

    /// Changes after every finished run in this process.
    pub fn runs_finished(&self) -> watch::Receiver<u64> {
        self.worker.finished()
    }
}
