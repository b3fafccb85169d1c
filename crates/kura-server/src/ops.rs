//! Administrative operations shared by the CLI and the HTTP API: validation, database and
//! storage together, and errors that say what to do.

use std::time::Duration;

use kura_db::{
    secrets, Db, DbError, Mirror, NamespaceKind, NewMirror, NewRepo, Pending, Protection, Repo,
    Role, Token, User,
};
use kura_git::RepoStore;
use kura_mirror::{Target, Worker};

use crate::names;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

impl From<DbError> for OpsError {
    fn from(e: DbError) -> OpsError {
        match e {
            DbError::Conflict(what) => {
                OpsError::Conflict(format!("{what} already exists; choose another name"))
            }
            other => OpsError::Internal(format!(
                "{other}; check that the database is reachable (kura config shows which one) and try again"
            )),
        }
    }
}

impl From<kura_git::GitError> for OpsError {
    fn from(e: kura_git::GitError) -> OpsError {
        OpsError::Internal(e.to_string())
    }
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;

/// A caller as seen by permission checks: the user, and the cap a token puts on them.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    /// `Some(scope)` when the caller authenticated with a token.
    pub scope: Option<Role>,
    /// The token's expiry, if it has one.
    pub token_expires_at: Option<i64>,
}

impl Actor {
    pub fn cap(&self, role: Role) -> Role {
        match self.scope {
            Some(s) => role.min(s),
            None => role,
        }
    }
}

#[derive(Clone)]
pub struct Ops {
    pub db: Db,
    pub store: RepoStore,
    pub worker: Worker,
}

fn parse_role(s: &str) -> Result<Role> {
    s.parse::<Role>().map_err(OpsError::Invalid)
}

impl Ops {
    pub fn new(db: Db, store: RepoStore, worker: Worker) -> Ops {
        Ops { db, store, worker }
    }

    /// On an empty database, creates `admin`; returns the password when it was generated.
    pub async fn bootstrap_admin(&self, password: Option<&str>) -> Result<Option<String>> {
        if self.db.user_count().await? > 0 {
            return Ok(None);
        }
        let (pw, generated) = match password {
            Some(p) if !p.is_empty() => (p.to_string(), false),
            _ => (secrets::random_password(), true),
        };
        let hash = hash(pw.clone()).await?;
        match self.db.create_user("admin", &hash, true).await {
            Ok(_) => Ok(generated.then_some(pw)),
            // Another replica won the race: fine.
            Err(DbError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    // ---- users ----

    pub async fn user(&self, name: &str) -> Result<User> {
        self.db.user_by_name(name).await?.ok_or_else(|| {
            OpsError::NotFound(format!("no user named {name:?}; see kura user list"))
        })
    }

    /// Creates a user; returns the generated password when none was given.
    pub async fn add_user(
        &self,
        name: &str,
        password: Option<String>,
        admin: bool,
    ) -> Result<(User, Option<String>)> {
        names::validate("user", name).map_err(OpsError::Invalid)?;
        let (pw, generated) = password_or_random(password)?;
        let hash = hash(pw.clone()).await?;
        let user = self.db.create_user(name, &hash, admin).await?;
        Ok((user, generated.then_some(pw)))
    }

    pub async fn set_password(
        &self,
        name: &str,
        password: Option<String>,
    ) -> Result<Option<String>> {
        let user = self.user(name).await?;
        let (pw, generated) = password_or_random(password)?;
        let hash = hash(pw.clone()).await?;
        self.db.set_password(user.id, &hash).await?;
        Ok(generated.then_some(pw))
    }

    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        let user = self.user(name).await?;
        self.db.set_disabled(user.id, disabled).await?;
        Ok(user)
    }

    // ---- tokens ----

    /// Returns the token (to show once) and its record.
    pub async fn create_token(
        &self,
        user: &str,
        scope: &str,
        expires_in: Option<Duration>,
        name: Option<&str>,
    ) -> Result<(String, Token)> {
        let user = self.user(user).await?;
        let scope = parse_role(scope)?;
        let expires_at = match expires_in {
            Some(d) if d.is_zero() => {
                return Err(OpsError::Invalid(
                    "--expires-in must be longer than 0s, e.g. 90d".into(),
                ))
            }
            Some(d) => Some(kura_db::now() + d.as_secs().max(1) as i64),
            None => None,
        };
        let (token, hash) = secrets::new_token();
        let name = name.unwrap_or("token");
        let rec = self
            .db
            .create_token(user.id, name, &hash, scope, expires_at)
            .await?;
        Ok((token, rec))
    }

    pub async fn list_tokens(&self, user: &str) -> Result<Vec<Token>> {
        let user = self.user(user).await?;
        Ok(self.db.list_tokens(user.id).await?)
    }

    pub async fn token(&self, id: i64) -> Result<Token> {
        self.db.token_by_id(id).await?.ok_or_else(|| {
            OpsError::NotFound(format!("no token with id {id}; see kura token list USER"))
        })
    }

    pub async fn revoke_token(&self, id: i64) -> Result<()> {
        if !self.db.delete_token(id).await? {
            return Err(OpsError::NotFound(format!(
                "no token with id {id}; see kura token list USER"
            )));
        }
        Ok(())
    }

    // ---- groups ----

    pub async fn add_group(&self, name: &str) -> Result<()> {
        names::validate("group", name).map_err(OpsError::Invalid)?;
        self.db.create_group(name).await?;
        Ok(())
    }

    async fn group(&self, name: &str) -> Result<kura_db::Namespace> {
        match self.db.namespace_by_name(name).await? {
            Some(ns) if ns.kind == NamespaceKind::Group => Ok(ns),
            Some(_) => Err(OpsError::Invalid(format!(
                "{name} is a user, not a group; members can only be added to groups (kura group add NAME)"
            ))),
            None => Err(OpsError::NotFound(format!(
                "no group named {name:?}; create it with kura group add {name}"
            ))),
        }
    }

    pub async fn set_member(&self, group: &str, user: &str, role: &str) -> Result<()> {
        let role = parse_role(role)?;
        let ns = self.group(group).await?;
        let user = self.user(user).await?;
        self.db.set_member(ns.id, user.id, role).await?;
        Ok(())
    }

    pub async fn remove_member(&self, group: &str, user: &str) -> Result<()> {
        let ns = self.group(group).await?;
        let user = self.user(user).await?;
        if !self.db.remove_member(ns.id, user.id).await? {
            return Err(OpsError::NotFound(format!(
                "{} is not a member of {}",
                user.name, ns.name
            )));
        }
        Ok(())
    }

    /// The role a user has over a whole namespace (to create repositories in it).
    pub async fn namespace_role(&self, user: &User, namespace: &str) -> Result<Option<Role>> {
        if user.is_admin {
            return Ok(Some(Role::Admin));
        }
        let Some(ns) = self.db.namespace_by_name(namespace).await? else {
            return Ok(None);
        };
        if ns.id == user.namespace_id {
            return Ok(Some(Role::Admin));
        }
        Ok(self.db.member_role(ns.id, user.id).await?)
    }

    // ---- repositories ----

    pub async fn repo(&self, full: &str) -> Result<Repo> {
        let (ns, name) = names::split_full(full).map_err(OpsError::Invalid)?;
        self.db.repo_by_name(&ns, &name).await?.ok_or_else(|| {
            OpsError::NotFound(format!("no repository {ns}/{name}; see kura repo list"))
        })
    }

    pub async fn create_repo(
        &self,
        full: &str,
        public: bool,
        default_branch: Option<&str>,
    ) -> Result<Repo> {
        let (ns_name, name) = names::split_full(full).map_err(OpsError::Invalid)?;
        let branch = default_branch.unwrap_or("main");
        validate_branch(branch)?;
        let ns = self.db.namespace_by_name(&ns_name).await?.ok_or_else(|| {
            OpsError::NotFound(format!(
                "no user or group named {ns_name:?}; create it first (kura user add / kura group add)"
            ))
        })?;
        let mut tx = self.db.begin().await?;
        let new = NewRepo {
            namespace_id: ns.id,
            name: &name,
            is_public: public,
            default_branch: branch,
        };
        let id = Db::insert_repo(&mut tx, &new, &ns.name).await?;
        // The row commits only once the directory exists: no repository without storage.
        self.store.create(id, branch).await?;
        if let Err(e) = tx.commit().await {
            let _ = self.store.remove(id).await;
            return Err(OpsError::from(DbError::from(e)));
        }
        self.db
            .repo_by_name(&ns.name, &name)
            .await?
            .ok_or_else(|| OpsError::Internal("repository vanished after creation".into()))
    }

    pub async fn list_repos(&self) -> Result<Vec<Repo>> {
        Ok(self.db.list_repos().await?)
    }

    pub async fn delete_repo(&self, full: &str) -> Result<Repo> {
        let repo = self.repo(full).await?;
        self.db.delete_repo(repo.id).await?;
        if let Err(e) = self.store.remove(repo.id).await {
            return Err(OpsError::Internal(format!(
                "{} is deleted, but its data could not be removed ({e}); remove {} by hand",
                repo.full_name(),
                self.store.path_of(repo.id).display()
            )));
        }
        Ok(repo)
    }

    pub async fn rename_repo(&self, full: &str, new_full: &str) -> Result<Repo> {
        let repo = self.repo(full).await?;
        let (ns_name, name) = names::split_full(new_full).map_err(OpsError::Invalid)?;
        let ns = self
            .db
            .namespace_by_name(&ns_name)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("no user or group named {ns_name:?}")))?;
        self.db
            .rename_repo(repo.id, ns.id, &name, &format!("{}/{name}", ns.name))
            .await?;
        self.repo(&format!("{}/{name}", ns.name)).await
    }

    pub async fn update_repo(
        &self,
        repo: &Repo,
        public: Option<bool>,
        default_branch: Option<&str>,
    ) -> Result<()> {
        let branch = default_branch.unwrap_or(&repo.default_branch);
        validate_branch(branch)?;
        self.db
            .update_repo_settings(repo.id, public.unwrap_or(repo.is_public), branch)
            .await?;
        if branch != repo.default_branch {
            self.store.set_head(repo.id, branch).await?;
        }
        Ok(())
    }

    pub async fn grant(&self, full: &str, user: &str, role: &str) -> Result<()> {
        let role = parse_role(role)?;
        let repo = self.repo(full).await?;
        let user = self.user(user).await?;
        self.db.set_grant(repo.id, user.id, role).await?;
        Ok(())
    }

    pub async fn revoke(&self, full: &str, user: &str) -> Result<()> {
        let repo = self.repo(full).await?;
        let user = self.user(user).await?;
        if !self.db.remove_grant(repo.id, user.id).await? {
            return Err(OpsError::NotFound(format!(
                "{} has no grant on {} (roles from groups are changed with kura group member)",
                user.name,
                repo.full_name()
            )));
        }
        Ok(())
    }

    pub async fn protect(&self, full: &str, pattern: &str, allow_push: &[String]) -> Result<()> {
        let repo = self.repo(full).await?;
        validate_pattern(pattern)?;
        let mut ids = Vec::new();
        for name in allow_push {
            ids.push(self.user(name).await?.id);
        }
        self.db.protect(repo.id, pattern, &ids).await?;
        Ok(())
    }

    pub async fn unprotect(&self, full: &str, pattern: &str) -> Result<()> {
        let repo = self.repo(full).await?;
        if !self.db.unprotect(repo.id, pattern).await? {
            return Err(OpsError::NotFound(format!(
                "{} has no protection for {pattern:?}; see kura protect --help",
                repo.full_name()
            )));
        }
        Ok(())
    }

    pub async fn protections(&self, repo: &Repo) -> Result<Vec<Protection>> {
        Ok(self.db.protections(repo.id).await?)
    }

    /// The user's role on the repository before any token cap; `None`: may not even see it.
    pub async fn role_of(&self, user: &User, repo: &Repo) -> Result<Option<Role>> {
        if user.is_admin || user.namespace_id == repo.namespace_id {
            return Ok(Some(Role::Admin));
        }
        let granted = self.db.granted_role(repo, user.id).await?;
        let public = repo.is_public.then_some(Role::Read);
        Ok(granted.max(public))
    }
}

/// What `kura mirror add` / `POST .../mirrors` asks for.
pub struct MirrorRequest<'a> {
    pub url: &'a str,
    pub create: bool,
    pub branches: &'a [String],
    pub keep_divergent: bool,
    pub username: Option<&'a str>,
    pub password: Option<String>,
}

impl Ops {
    pub async fn add_mirror(&self, full: &str, req: MirrorRequest<'_>) -> Result<Mirror> {
        let repo = self.repo(full).await?;
        let target = Target::parse(req.url).map_err(OpsError::Invalid)?;
        match (&target, req.username, &req.password) {
            (Target::CodeCommit { .. }, Some(_), _) | (Target::CodeCommit { .. }, _, Some(_)) => {
                return Err(OpsError::Invalid(
                    "CodeCommit mirrors take no user name or password: Kura signs with the AWS credentials of its task role".into(),
                ))
            }
            (Target::Git { .. }, None, Some(_)) => {
                return Err(OpsError::Invalid(
                    "a password needs a user name: add --username".into(),
                ))
            }
            (Target::Git { url }, _, Some(_))
                if url.starts_with("http://") && !is_loopback_url(url) =>
            {
                return Err(OpsError::Invalid(
                    "a password would cross the network in clear text over http://: use https://"
                        .into(),
                ))
            }
            (Target::Git { .. }, _, _) if req.create => {
                return Err(OpsError::Invalid(
                    "--create works only for codecommit:// mirrors".into(),
                ))
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
                &NewMirror {
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
        self.db.enqueue_sync(id).await?;
        self.worker.kick();
        self.db
            .mirror_by_id(id)
            .await?
            .ok_or_else(|| OpsError::Internal("mirror vanished after creation".into()))
    }

    /// Mirrors of one repository, or of all when `full` is `None`.
    pub async fn mirrors(&self, full: Option<&str>) -> Result<Vec<Mirror>> {
        let repo_id = match full {
            Some(f) => Some(self.repo(f).await?.id),
            None => None,
        };
        Ok(self.db.mirrors(repo_id).await?)
    }

    /// One mirror of the repository: by id or URL, or the only one.
    pub async fn mirror(&self, full: &str, which: Option<&str>) -> Result<Mirror> {
        let repo = self.repo(full).await?;
        let all = self.db.mirrors(Some(repo.id)).await?;
        let name = repo.full_name();
        match which {
            Some(w) => all
                .into_iter()
                .find(|m| m.url == w || m.id.to_string() == w)
                .ok_or_else(|| {
                    OpsError::NotFound(format!(
                        "{name} has no mirror {w:?}; see kura mirror list {name}"
                    ))
                }),
            None if all.len() == 1 => Ok(all.into_iter().next().expect("one mirror")),
            None if all.is_empty() => Err(OpsError::NotFound(format!(
                "{name} has no mirror; add one with kura mirror add {name} codecommit://REGION/REPOSITORY"
            ))),
            None => Err(OpsError::Invalid(format!(
                "{name} has {} mirrors: name one by id or URL (see kura mirror list {name})",
                all.len()
            ))),
        }
    }

    pub async fn remove_mirror(&self, full: &str, which: Option<&str>) -> Result<Mirror> {
        let m = self.mirror(full, which).await?;
        self.db.remove_mirror(m.id).await?;
        Ok(m)
    }

    /// Queues a run now; returns the job id.
    pub async fn sync_mirror(&self, m: &Mirror) -> Result<i64> {
        let job = self.db.enqueue_sync(m.id).await?;
        self.worker.kick();
        Ok(job)
    }

    pub async fn mirror_pending(&self, m: &Mirror) -> Result<Pending> {
        Ok(self.db.pending(m.id).await?)
    }
}

/// How a maintenance request ended.
pub enum Maintained {
    Done {
        summary: String,
        duration_ms: i64,
    },
    /// Another process holds the repository's maintenance lease.
    Busy,
}

const MAINTENANCE_LEASE_SECS: i64 = 120;

impl Ops {
    /// Maintains the repository under its lease (one process at a time across replicas).
    pub async fn maintain(
        &self,
        repo: &Repo,
        full: bool,
        grace: std::time::Duration,
    ) -> Result<Maintained> {
        let owner = self.worker.settings().owner.clone();
        if !self
            .db
            .claim_maintenance(repo.id, &owner, MAINTENANCE_LEASE_SECS)
            .await?
        {
            return Ok(Maintained::Busy);
        }
        let started = std::time::Instant::now();
        let opts = kura_git::maintenance::MaintainOptions { full, grace };
        let renew = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(
                    MAINTENANCE_LEASE_SECS as u64 / 3,
                ))
                .await;
                if let Ok(false) = self
                    .db
                    .renew_maintenance(repo.id, &owner, MAINTENANCE_LEASE_SECS)
                    .await
                {
                    return;
                }
            }
        };
        let result = tokio::select! {
            r = self.store.maintain(repo.id, opts) => r.map_err(|e| e.to_string()),
            _ = renew => Err("lost the maintenance lease".to_string()),
        };
        let duration_ms = started.elapsed().as_millis() as i64;
        let outcome = match &result {
            Ok(report) => Ok(report.summary()),
            Err(e) => Err(e.clone()),
        };
        self.db
            .finish_maintenance(
                repo.id,
                &owner,
                duration_ms,
                outcome.as_ref().map(String::as_str).map_err(String::as_str),
            )
            .await?;
        match outcome {
            Ok(summary) => {
                tracing::info!(repo = %repo.full_name(), duration_ms, %summary, "maintained");
                Ok(Maintained::Done {
                    summary,
                    duration_ms,
                })
            }
            Err(e) => {
                tracing::warn!(repo = %repo.full_name(), error = %e, "maintenance failed");
                Err(OpsError::Internal(format!(
                    "maintenance of {} failed: {e}",
                    repo.full_name()
                )))
            }
        }
    }
}

fn is_loopback_url(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map(|(_, r)| r.split('/').next().unwrap_or(""))
        .unwrap_or("");
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn password_or_random(password: Option<String>) -> Result<(String, bool)> {
    match password {
        Some(p) if p.chars().count() < 8 => Err(OpsError::Invalid(
            "the password is too short: use at least 8 characters".into(),
        )),
        Some(p) => Ok((p, false)),
        None => Ok((secrets::random_password(), true)),
    }
}

async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| OpsError::Internal(format!("password hashing failed: {e}")))
}

/// Branch names in settings: the subset of git's rules that matter for a default branch.
fn validate_branch(branch: &str) -> Result<()> {
    let ok = !branch.is_empty()
        && branch.len() <= 200
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.contains("@{")
        && branch
            .chars()
            .all(|c| !c.is_control() && !" ~^:?*[\\".contains(c));
    if ok {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "{branch:?} is not a valid branch name (see git check-ref-format)"
        )))
    }
}

fn validate_pattern(pattern: &str) -> Result<()> {
    let ok = !pattern.is_empty()
        && pattern.len() <= 200
        && !pattern.starts_with("refs/")
        && glob::Pattern::new(pattern).is_ok();
    if ok {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "{pattern:?} is not a branch pattern: write a branch name or a glob such as main or release/* (without refs/heads/)"
        )))
    }
}
