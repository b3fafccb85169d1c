//! Repositories, grants and protected branches, and the facts access decisions are made from.

use kura_db::{Db, DbError, NewRepo, Protection, Repo, Role, User};

use super::{Ops, OpsError, Result};
use crate::names::RepoPath;

/// What one user has on one repository by membership and grants (before site-admin, owner,
/// public and token rules, which `access` applies).
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub site_admin: bool,
    pub owner: bool,
    pub granted: Option<Role>,
}

impl Ops {
    pub async fn repo(&self, path: &RepoPath) -> Result<Repo> {
        self.find_repo(path)
            .await?
            .ok_or_else(|| OpsError::RepoNotFound(path.to_string()))
    }

    /// The repository, or `None` when it does not exist (access turns both into one answer).
    pub async fn find_repo(&self, path: &RepoPath) -> Result<Option<Repo>> {
        Ok(self.db.repo_by_name(&path.namespace, &path.name).await?)
    }

    pub async fn repo_by_id(&self, id: i64) -> Result<Option<Repo>> {
        Ok(self.db.repo_by_id(id).await?)
    }

    pub async fn list_repos(&self) -> Result<Vec<Repo>> {
        Ok(self.db.list_repos().await?)
    }

    pub async fn standing(&self, user: &User, repo: &Repo) -> Result<Standing> {
        let site_admin = user.is_admin;
        let owner = user.namespace_id == repo.namespace_id;
        let granted = if site_admin || owner {
            None
        } else {
            self.db.granted_role(repo, user.id).await?
        };
        Ok(Standing {
            site_admin,
            owner,
            granted,
        })
    }

    pub async fn create_repo(
        &self,
        path: &RepoPath,
        public: bool,
        default_branch: Option<&str>,
    ) -> Result<Repo> {
        let branch = default_branch.unwrap_or("main");
        validate_branch(branch)?;
        let ns = self
            .db
            .namespace_by_name(&path.namespace)
            .await?
            .ok_or_else(|| OpsError::NamespaceNotFound(path.namespace.clone()))?;
        let mut tx = self.db.begin().await?;
        let new = NewRepo {
            namespace_id: ns.id,
            name: &path.name,
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
        self.repo(&RepoPath {
            namespace: ns.name,
            name: path.name.clone(),
        })
        .await
    }

    pub async fn delete_repo(&self, path: &RepoPath) -> Result<Repo> {
        let repo = self.repo(path).await?;
        self.db.delete_repo(repo.id).await?;
        if let Err(e) = self.store.remove(repo.id).await {
            return Err(OpsError::Storage(format!(
                "{} is deleted, but its data could not be removed ({e}); remove {} by hand",
                repo.full_name(),
                self.store.path_of(repo.id).display()
            )));
        }
        Ok(repo)
    }

    pub async fn rename_repo(&self, path: &RepoPath, to: &RepoPath) -> Result<Repo> {
        let repo = self.repo(path).await?;
        let ns = self
            .db
            .namespace_by_name(&to.namespace)
            .await?
            .ok_or_else(|| OpsError::NamespaceNotFound(to.namespace.clone()))?;
        self.db
            .rename_repo(
                repo.id,
                ns.id,
                &to.name,
                &format!("{}/{}", ns.name, to.name),
            )
            .await?;
        self.repo(&RepoPath {
            namespace: ns.name,
            name: to.name.clone(),
        })
        .await
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

    pub async fn grant(&self, path: &RepoPath, user: &str, role: Role) -> Result<()> {
        let repo = self.repo(path).await?;
        let user = self.user(user).await?;
        self.db.set_grant(repo.id, user.id, role).await?;
        Ok(())
    }

    pub async fn revoke(&self, path: &RepoPath, user: &str) -> Result<()> {
        let repo = self.repo(path).await?;
        let user = self.user(user).await?;
        if !self.db.remove_grant(repo.id, user.id).await? {
            return Err(OpsError::NoGrant {
                user: user.name,
                repo: repo.full_name(),
            });
        }
        Ok(())
    }

    pub async fn protect(
        &self,
        path: &RepoPath,
        pattern: &str,
        allow_push: &[String],
    ) -> Result<()> {
        let repo = self.repo(path).await?;
        validate_pattern(pattern)?;
        let mut ids = Vec::new();
        for name in allow_push {
            ids.push(self.user(name).await?.id);
        }
        self.db.protect(repo.id, pattern, &ids).await?;
        Ok(())
    }

    pub async fn unprotect(&self, path: &RepoPath, pattern: &str) -> Result<()> {
        let repo = self.repo(path).await?;
        if !self.db.unprotect(repo.id, pattern).await? {
            return Err(OpsError::NoProtection {
                repo: repo.full_name(),
                pattern: pattern.to_string(),
            });
        }
        Ok(())
    }

    pub async fn protections(&self, repo: &Repo) -> Result<Vec<Protection>> {
        Ok(self.db.protections(repo.id).await?)
    }
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
