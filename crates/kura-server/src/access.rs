//! The one access decision: what a caller may do on a repository or in a namespace. Git over
//! HTTP, the API and the pages all ask here; a repository the caller may not read answers
//! exactly like a missing one.

use kura_db::{Repo, Role, User};

use crate::names::RepoPath;
use crate::ops::{Ops, OpsError};

/// Who is making the request, as authentication found them.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User(Actor),
}

/// A signed-in user and the cap their credential puts on them.
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

    /// A site admin whose credential is not capped below admin.
    pub fn is_site_admin(&self) -> bool {
        self.user.is_admin && self.cap(Role::Admin) == Role::Admin
    }
}

impl Caller {
    pub fn actor(&self) -> Option<&Actor> {
        match self {
            Caller::User(a) => Some(a),
            Caller::Anonymous => None,
        }
    }

    pub fn name(&self) -> &str {
        self.actor().map(|a| a.user.name.as_str()).unwrap_or("-")
    }
}

/// Everything the decision depends on, gathered beforehand; `decide` is pure.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    pub signed_in: bool,
    pub disabled: bool,
    pub site_admin: bool,
    pub owner: bool,
    /// The strongest of the group role and a direct grant.
    pub granted: Option<Role>,
    pub public: bool,
    pub anonymous_read: bool,
    /// The token's scope, when the caller used a token.
    pub scope: Option<Role>,
}

/// The caller's role on the repository before and after the token cap; `None`: may not even
/// know it exists.
pub fn decide(f: Facts) -> Option<(Role, Role)> {
    if f.disabled {
        return None;
    }
    let full = if !f.signed_in {
        (f.public && f.anonymous_read).then_some(Role::Read)
    } else if f.site_admin || f.owner {
        Some(Role::Admin)
    } else {
        f.granted.max(f.public.then_some(Role::Read))
    }?;
    let capped = f.scope.map_or(full, |s| full.min(s));
    Some((full, capped))
}

/// A repository the caller may see, with their role on it.
#[derive(Debug, Clone)]
pub struct RepoAccess {
    pub repo: Repo,
    /// The role before the token cap.
    pub full_role: Role,
    /// The role that counts.
    pub role: Role,
}

/// Why access was refused; each front end words it for its audience.
#[derive(Debug)]
pub enum Denied {
    /// Missing, or not visible to this caller: the same answer either way.
    Hidden { anonymous: bool, repo: String },
    /// Anonymous callers must sign in first.
    SignIn { repo: String, need: Role },
    /// The user has the role, the token's scope does not.
    Scope {
        repo: String,
        scope: Role,
        need: Role,
    },
    /// The user's role is too low.
    Role {
        repo: String,
        role: Role,
        need: Role,
    },
    /// The operation is for site admins (with an admin-scope token).
    SiteAdmin,
    /// Needs admin of the namespace (creating or moving repositories, managing members).
    NamespaceAdmin { namespace: String },
    /// The database or storage failed while deciding.
    Failed(OpsError),
}

impl From<OpsError> for Denied {
    fn from(e: OpsError) -> Denied {
        Denied::Failed(e)
    }
}

/// The caller's access to the repository at `path`, if they may see it.
pub async fn repo(
    ops: &Ops,
    anonymous_read: bool,
    caller: &Caller,
    path: &RepoPath,
) -> Result<RepoAccess, Denied> {
    let Some(repo) = ops.find_repo(path).await? else {
        return Err(Denied::Hidden {
            anonymous: caller.actor().is_none(),
            repo: path.to_string(),
        });
    };
    on(ops, anonymous_read, caller, repo).await
}

/// The caller's access to a repository already looked up (listings).
pub async fn on(
    ops: &Ops,
    anonymous_read: bool,
    caller: &Caller,
    repo: Repo,
) -> Result<RepoAccess, Denied> {
    let mut facts = Facts {
        public: repo.is_public,
        anonymous_read,
        ..Facts::default()
    };
    if let Some(a) = caller.actor() {
        let s = ops.standing(&a.user, &repo).await?;
        facts.signed_in = true;
        facts.disabled = a.user.disabled;
        facts.site_admin = s.site_admin;
        facts.owner = s.owner;
        facts.granted = s.granted;
        facts.scope = a.scope;
    }
    let Some((full_role, role)) = decide(facts) else {
        return Err(Denied::Hidden {
            anonymous: caller.actor().is_none(),
            repo: repo.full_name(),
        });
    };
    Ok(RepoAccess {
        repo,
        full_role,
        role,
    })
}

/// The repository, if the caller has at least `need` on it.
pub async fn require(
    ops: &Ops,
    anonymous_read: bool,
    caller: &Caller,
    path: &RepoPath,
    need: Role,
) -> Result<RepoAccess, Denied> {
    let access = repo(ops, anonymous_read, caller, path).await?;
    access.check(caller, need)?;
    Ok(access)
}

impl RepoAccess {
    pub fn check(&self, caller: &Caller, need: Role) -> Result<(), Denied> {
        if self.role >= need {
            return Ok(());
        }
        let repo = self.repo.full_name();
        Err(match caller.actor() {
            None => Denied::SignIn { repo, need },
            Some(a) if self.full_role >= need => Denied::Scope {
                repo,
                scope: a.scope.unwrap_or(Role::Read),
                need,
            },
            Some(_) => Denied::Role {
                repo,
                role: self.full_role,
                need,
            },
        })
    }
}

/// The caller's role over a namespace (after the token cap).
pub async fn namespace_role(
    ops: &Ops,
    actor: &Actor,
    namespace: &str,
) -> Result<Option<Role>, Denied> {
    if actor.user.disabled {
        return Ok(None);
    }
    Ok(ops
        .namespace_role(&actor.user, namespace)
        .await?
        .map(|r| actor.cap(r)))
}

/// Admin of the namespace, or refused.
pub async fn require_namespace_admin(
    ops: &Ops,
    actor: &Actor,
    namespace: &str,
) -> Result<(), Denied> {
    if namespace_role(ops, actor, namespace).await? == Some(Role::Admin) {
        Ok(())
    } else {
        Err(Denied::NamespaceAdmin {
            namespace: namespace.to_string(),
        })
    }
}

/// Creating a repository in a namespace: admin of it, with a token of scope write or more
/// (creating only adds).
pub async fn require_repo_creator(ops: &Ops, actor: &Actor, namespace: &str) -> Result<(), Denied> {
    let full = ops.namespace_role(&actor.user, namespace).await?;
    if !actor.user.disabled && full == Some(Role::Admin) && actor.cap(Role::Admin) >= Role::Write {
        Ok(())
    } else {
        Err(Denied::NamespaceAdmin {
            namespace: namespace.to_string(),
        })
    }
}

/// `/metrics`: a site admin with a token of any scope (monitoring reads).
pub fn require_metrics_reader(caller: &Caller) -> Result<(), Denied> {
    match caller.actor() {
        Some(a) if a.user.is_admin && a.scope.is_some() && !a.user.disabled => Ok(()),
        Some(_) => Err(Denied::SiteAdmin),
        None => Err(Denied::SignIn {
            repo: "/metrics".into(),
            need: Role::Read,
        }),
    }
}

/// Revoking (or otherwise managing) a token: its owner, or a site admin. Callers answer a
/// refusal like a missing token, so token ids cannot be probed.
pub fn may_manage_token(actor: &Actor, owner_id: i64) -> bool {
    !actor.user.disabled && (actor.user.id == owner_id || actor.is_site_admin())
}

/// Who may add a trigger of `kind` to a repository they administer: webhooks, anyone who
/// administers it; EventBridge and CodePipeline triggers act with the server's own AWS identity
/// wherever they point (like mirrors), so site admins only.
pub fn require_trigger_kind(actor: &Actor, kind: &str) -> Result<(), Denied> {
    match kind {
        "eventbridge" | "codepipeline" => require_site_admin(actor),
        _ => Ok(()),
    }
}

pub fn require_site_admin(actor: &Actor) -> Result<(), Denied> {
    if actor.is_site_admin() && !actor.user.disabled {
        Ok(())
    } else {
        Err(Denied::SiteAdmin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn user() -> Facts {
        Facts {
            signed_in: true,
            anonymous_read: true,
            ..Facts::default()
        }
    }

    #[test]
    fn the_decision_table() {
        let anon = Facts {
            anonymous_read: true,
            ..Facts::default()
        };
        type Case = (&'static str, Facts, Option<(Role, Role)>);
        let cases: Vec<Case> = vec![
            ("anonymous, private", anon, None),
            (
                "anonymous, public",
                Facts {
                    public: true,
                    ..anon
                },
                Some((Read, Read)),
            ),
            (
                "anonymous, public, anonymous reads off",
                Facts {
                    public: true,
                    anonymous_read: false,
                    ..anon
                },
                None,
            ),
            ("user, private, nothing", user(), None),
            (
                "user, public",
                Facts {
                    public: true,
                    ..user()
                },
                Some((Read, Read)),
            ),
            (
                "user, public, anonymous reads off",
                Facts {
                    public: true,
                    anonymous_read: false,
                    ..user()
                },
                Some((Read, Read)),
            ),
            (
                "grant write",
                Facts {
                    granted: Some(Write),
                    ..user()
                },
                Some((Write, Write)),
            ),
            (
                "grant read on a public repo",
                Facts {
                    granted: Some(Read),
                    public: true,
                    ..user()
                },
                Some((Read, Read)),
            ),
            (
                "owner",
                Facts {
                    owner: true,
                    ..user()
                },
                Some((Admin, Admin)),
            ),
            (
                "site admin",
                Facts {
                    site_admin: true,
                    ..user()
                },
                Some((Admin, Admin)),
            ),
            (
                "site admin, read token",
                Facts {
                    site_admin: true,
                    scope: Some(Read),
                    ..user()
                },
                Some((Admin, Read)),
            ),
            (
                "writer, admin token",
                Facts {
                    granted: Some(Write),
                    scope: Some(Admin),
                    ..user()
                },
                Some((Write, Write)),
            ),
            (
                "disabled owner",
                Facts {
                    owner: true,
                    disabled: true,
                    ..user()
                },
                None,
            ),
            (
                "disabled user, public repo",
                Facts {
                    public: true,
                    disabled: true,
                    ..user()
                },
                None,
            ),
        ];
        for (what, facts, want) in cases {
            assert_eq!(decide(facts), want, "{what}");
        }
    }
}
