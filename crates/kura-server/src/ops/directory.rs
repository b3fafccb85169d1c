//! Users from the company directory: sign-in, the periodic sync, and `kura ldap test`. The
//! directory decides who a directory user is (display name, email, disabled), whether they are
//! a site admin (when `ldap.admin_group` is set) and their roles in the Kura groups that
//! `[[ldap.group]]` names; every other membership or grant stays Kura's.

use std::sync::Arc;
use std::time::Duration;

use kura_db::{DirectoryFacts, Role, User};
use kura_ldap::{names_group, DirError, Directory, Person, SignIn, Trace};
use tokio::sync::Semaphore;

use super::{Ops, OpsError, Result};
use crate::config::LdapConfig;

/// At most this many directory checks at once; the rest wait up to the directory timeout.
const MAX_CHECKS: usize = 32;

/// A directory group and what its members get in Kura.
#[derive(Debug, Clone)]
pub struct GroupRule {
    pub dn: String,
    pub kura_group: String,
    pub role: Role,
}

/// The directory and the rules that map it onto Kura.
pub struct DirectoryLink {
    dir: Directory,
    rules: Vec<GroupRule>,
    admin_group: Option<String>,
    slots: Semaphore,
    timeout: Duration,
}

impl DirectoryLink {
    pub fn from_config(c: &LdapConfig) -> std::result::Result<DirectoryLink, String> {
        let settings = c.settings().map_err(|e| e.to_string())?;
        let dir = Directory::new(settings).map_err(|e| e.to_string())?;
        let rules = c
            .groups
            .iter()
            .map(|g| {
                Ok(GroupRule {
                    dn: g.dn.clone(),
                    kura_group: g.kura_group.clone(),
                    role: g.role.parse()?,
                })
            })
            .collect::<std::result::Result<_, String>>()?;
        Ok(DirectoryLink {
            dir,
            rules,
            admin_group: c.admin_group.clone().filter(|g| !g.is_empty()),
            slots: Semaphore::new(MAX_CHECKS),
            timeout: c.timeout,
        })
    }

    /// The role in each mapped Kura group that these directory groups give (`None`: no role,
    /// the membership goes).
    pub fn wanted(&self, groups: &[String]) -> Vec<(String, Option<Role>)> {
        let mut out: Vec<(String, Option<Role>)> = Vec::new();
        for r in &self.rules {
            let has = names_group(groups, &r.dn).then_some(r.role);
            match out
                .iter_mut()
                .find(|(g, _)| g.eq_ignore_ascii_case(&r.kura_group))
            {
                Some((_, role)) => *role = (*role).max(has),
                None => out.push((r.kura_group.clone(), has)),
            }
        }
        out
    }

    /// Whether these groups make a site admin (`None`: Kura's own flag decides).
    pub fn admin(&self, groups: &[String]) -> Option<bool> {
        self.admin_group.as_deref().map(|g| names_group(groups, g))
    }

    /// What `kura ldap test` prints after the groups: the roles and the admin flag.
    pub fn describe_roles(&self, groups: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rules {
            if names_group(groups, &r.dn) {
                out.push(format!(
                    "{} in group {} (from {})",
                    r.role, r.kura_group, r.dn
                ));
            }
        }
        if out.is_empty() {
            out.push("no roles: the user is in none of the [[ldap.group]] groups".into());
        }
        match self.admin(groups) {
            Some(true) => out.push(format!(
                "site admin (member of {})",
                self.admin_group.as_deref().unwrap_or("")
            )),
            Some(false) => out.push("not a site admin".into()),
            None => out.push("site admin: decided in Kura (no ldap.admin_group)".into()),
        }
        out
    }
}

/// What one sync changed, for the log and `kura ldap sync`.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub checked: usize,
    pub disabled: Vec<String>,
    pub enabled: Vec<String>,
    pub changes: Vec<String>,
    pub problems: Vec<String>,
}

fn dir_error(e: DirError) -> OpsError {
    match e {
        DirError::Unavailable(m) => OpsError::DirectoryUnavailable(m),
        DirError::Misconfigured(m) => OpsError::DirectoryMisconfigured(m),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Ops {
    pub fn with_directory(mut self, link: DirectoryLink) -> Ops {
        self.directory = Some(Arc::new(link));
        self
    }

    pub fn directory(&self) -> Option<&DirectoryLink> {
        self.directory.as_deref()
    }

    fn link(&self) -> Result<&DirectoryLink> {
        self.directory().ok_or_else(|| {
            OpsError::Invalid(
                "no [ldap] section is configured: add one to kura.toml (see the README, \"Sign in with Active Directory\")".into(),
            )
        })
    }

    /// Checks `password` with the directory and brings the Kura user in line with it.
    /// `Ok(None)`: wrong password or unknown login. A disabled user comes back disabled.
    pub async fn directory_sign_in(&self, login: &str, password: &str) -> Result<Option<User>> {
        let link = self.link()?;
        let _slot = tokio::time::timeout(link.timeout, link.slots.acquire())
            .await
            .map_err(|_| {
                OpsError::DirectoryUnavailable(
                    "too many sign-ins are waiting for the directory".into(),
                )
            })?
            .map_err(|e| OpsError::Internal(e.to_string()))?;
        let mut trace = Trace::default();
        match link.dir.sign_in(login, password, &mut trace).await {
            Ok(SignIn::Ok(p)) | Ok(SignIn::Disabled(p)) => Ok(Some(self.apply(link, &p).await?.0)),
            Ok(SignIn::Wrong) => Ok(None),
            Err(e) => Err(dir_error(e)),
        }
    }

    /// The steps of one sign-in and the roles it would give, without changing Kura.
    pub async fn directory_test(
        &self,
        login: &str,
        password: &str,
    ) -> Result<(Trace, Result<Person>)> {
        let link = self.link()?;
        let mut trace = Trace::default();
        let r = match link.dir.sign_in(login, password, &mut trace).await {
            Ok(SignIn::Ok(p)) => Ok(p),
            Ok(SignIn::Disabled(p)) => Err(OpsError::Invalid(format!(
                "{} is disabled in the directory: Kura would refuse the sign-in",
                p.dn
            ))),
            Ok(SignIn::Wrong) => Err(OpsError::Invalid(
                "the directory refused this login and password (wrong password, or user_filter found nobody)".into(),
            )),
            Err(e) => Err(dir_error(e)),
        };
        Ok((trace, r))
    }

    /// `Ok(url)` when the directory answers the service account.
    pub async fn directory_health(&self) -> Option<std::result::Result<String, String>> {
        let link = self.directory()?;
        Some(link.dir.health().await.map_err(|e| e.to_string()))
    }

    /// Creates or updates the Kura user of a directory entry: facts, admin flag, memberships.
    /// Returns the user as stored and what changed, in words.
    async fn apply(&self, link: &DirectoryLink, p: &Person) -> Result<(User, Vec<String>)> {
        let name = p.login.to_lowercase();
        crate::names::validate("user", &name).map_err(|e| {
            OpsError::Invalid(format!(
                "the directory login {:?} cannot be a Kura user name ({e})",
                p.login
            ))
        })?;
        let facts = DirectoryFacts {
            dn: p.dn.clone(),
            display_name: p.display_name.clone(),
            email: p.email.clone(),
            disabled: p.disabled,
            synced_at: now_ms(),
        };
        let admin = link.admin(&p.groups);
        let mut changes = Vec::new();
        let user = match self.db.user_by_name(&name).await? {
            Some(u) if u.directory.is_none() => return Err(OpsError::DirectoryClash(name)),
            Some(u) => {
                if admin.is_some_and(|a| a != u.is_admin) {
                    changes.push(format!(
                        "{name}: {}",
                        if u.is_admin {
                            "no longer a site admin"
                        } else {
                            "now a site admin"
                        }
                    ));
                }
                let was_disabled = u.directory.as_ref().is_some_and(|d| d.disabled);
                if was_disabled != p.disabled {
                    changes.push(format!(
                        "{name}: {} by the directory",
                        if p.disabled { "disabled" } else { "enabled" }
                    ));
                }
                self.db
                    .update_directory_user(u.id, &facts, admin)
                    .await?
                    .ok_or_else(|| OpsError::UserNotFound(name.clone()))?
            }
            None => {
                let u = match self
                    .db
                    .create_directory_user(&name, &facts, admin.unwrap_or(false))
                    .await
                {
                    Err(kura_db::DbError::Conflict(_)) => {
                        // Another request created it first (or a group has the name).
                        self.db
                            .user_by_name(&name)
                            .await?
                            .ok_or(OpsError::Conflict(format!("a group named {name}")))?
                    }
                    other => other?,
                };
                changes.push(format!("{name}: created from {}", p.dn));
                u
            }
        };
        if user.disabled {
            self.db.delete_user_sessions(user.id, None).await?;
        }
        changes.extend(self.align_memberships(link, &user, &p.groups).await?);
        Ok((user, changes))
    }

    /// Sets the user's role in each mapped Kura group to what the directory gives, creating
    /// a mapped group that does not exist yet.
    async fn align_memberships(
        &self,
        link: &DirectoryLink,
        user: &User,
        groups: &[String],
    ) -> Result<Vec<String>> {
        let current = self.db.memberships(user.id).await?;
        let mut changes = Vec::new();
        for (group, want) in link.wanted(groups) {
            let have = current
                .iter()
                .find(|m| m.group.eq_ignore_ascii_case(&group))
                .map(|m| m.role);
            if have == want {
                continue;
            }
            let ns = match self.db.namespace_by_name(&group).await? {
                Some(ns) if ns.kind == kura_db::NamespaceKind::Group => ns,
                Some(_) => {
                    return Err(OpsError::Invalid(format!(
                        "[[ldap.group]] maps to {group}, which is a user, not a group: map it to a group"
                    )))
                }
                None if want.is_none() => continue,
                None => match self.db.create_group(&group).await {
                    Ok(ns) => ns,
                    Err(kura_db::DbError::Conflict(_)) => self
                        .db
                        .namespace_by_name(&group)
                        .await?
                        .ok_or_else(|| OpsError::GroupNotFound(group.clone()))?,
                    Err(e) => return Err(e.into()),
                },
            };
            match want {
                Some(role) => {
                    self.db.set_member(ns.id, user.id, role).await?;
                    changes.push(format!(
                        "{}: {role} in {group}{}",
                        user.name,
                        have.map(|h| format!(" (was {h})")).unwrap_or_default()
                    ));
                }
                None => {
                    self.db.remove_member(ns.id, user.id).await?;
                    changes.push(format!(
                        "{}: removed from {group} (was {})",
                        user.name,
                        have.map(|h| h.as_str()).unwrap_or("?")
                    ));
                }
            }
        }
        Ok(changes)
    }

    /// Reads every directory user's entry again and applies it; a user `user_filter` no
    /// longer finds is disabled. Stops at the first outage (nothing is disabled because the
    /// directory did not answer).
    pub async fn directory_sync(&self) -> Result<SyncReport> {
        let link = self.link()?;
        let mut report = SyncReport::default();
        for u in self.db.list_users().await? {
            let Some(facts) = &u.directory else { continue };
            report.checked += 1;
            let mut trace = Trace::default();
            match link.dir.lookup(&u.name, &mut trace).await {
                Ok(Some(p)) => match self.apply(link, &p).await {
                    Ok((after, changes)) => {
                        if facts.disabled && !after.directory.as_ref().is_some_and(|d| d.disabled) {
                            report.enabled.push(u.name.clone());
                        }
                        if !facts.disabled && after.directory.as_ref().is_some_and(|d| d.disabled) {
                            report.disabled.push(u.name.clone());
                        }
                        report.changes.extend(changes);
                    }
                    Err(e) => report.problems.push(format!("{}: {e}", u.name)),
                },
                Ok(None) => {
                    let gone = DirectoryFacts {
                        disabled: true,
                        synced_at: now_ms(),
                        ..facts.clone()
                    };
                    self.db.update_directory_user(u.id, &gone, None).await?;
                    self.db.delete_user_sessions(u.id, None).await?;
                    if !facts.disabled {
                        report.disabled.push(u.name.clone());
                        report.changes.push(format!(
                            "{}: disabled (ldap.user_filter no longer finds {})",
                            u.name, facts.dn
                        ));
                    }
                }
                Err(e) => return Err(dir_error(e)),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(rules: &[(&str, &str, Role)], admin: Option<&str>) -> DirectoryLink {
        let settings = kura_ldap::Settings {
            urls: vec!["ldaps://127.0.0.1:1".into()],
            starttls: false,
            ca_bundle: None,
            bind_dn: "cn=svc".into(),
            bind_password: "x".into(),
            user_base: "dc=test".into(),
            user_filter: None,
            login_attribute: None,
            display_name_attribute: None,
            email_attribute: None,
            group_base: None,
            kind: kura_ldap::Kind::Ldap,
            timeout: Duration::from_secs(1),
        };
        DirectoryLink {
            dir: Directory::new(settings).unwrap(),
            rules: rules
                .iter()
                .map(|(dn, g, role)| GroupRule {
                    dn: dn.to_string(),
                    kura_group: g.to_string(),
                    role: *role,
                })
                .collect(),
            admin_group: admin.map(String::from),
            slots: Semaphore::new(1),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_strongest_mapped_role_wins_and_missing_groups_mean_no_role() {
        let l = link(
            &[
                ("cn=dev,ou=groups,dc=test", "payments", Role::Write),
                ("leads", "payments", Role::Admin),
                ("cn=ops,ou=groups,dc=test", "ops", Role::Read),
            ],
            Some("CN=Admins,OU=Groups,DC=test"),
        );
        let groups = vec![
            "CN=Dev,OU=Groups,DC=test".to_string(),
            "cn=leads,ou=groups,dc=test".to_string(),
        ];
        assert_eq!(
            l.wanted(&groups),
            vec![
                ("payments".to_string(), Some(Role::Admin)),
                ("ops".to_string(), None)
            ]
        );
        assert_eq!(l.admin(&groups), Some(false));
        assert_eq!(
            l.admin(&["cn=admins, ou=groups, dc=test".into()]),
            Some(true)
        );
        assert_eq!(link(&[], None).admin(&groups), None);
    }
}
