//! Groups and their members.

use kura_db::{Namespace, NamespaceKind, Role, User};

use super::{Ops, OpsError, Result};
use crate::names;

impl Ops {
    pub async fn add_group(&self, name: &str) -> Result<()> {
        names::validate("group", name).map_err(OpsError::Invalid)?;
        self.db.create_group(name).await?;
        Ok(())
    }

    async fn group(&self, name: &str) -> Result<Namespace> {
        match self.db.namespace_by_name(name).await? {
            Some(ns) if ns.kind == NamespaceKind::Group => Ok(ns),
            Some(_) => Err(OpsError::NotAGroup(name.to_string())),
            None => Err(OpsError::GroupNotFound(name.to_string())),
        }
    }

    /// Every group with its number of members and repositories.
    pub async fn list_groups(&self) -> Result<Vec<(Namespace, i64, i64)>> {
        Ok(self.db.list_groups().await?)
    }

    /// A group, its members (name, role) and its repositories.
    pub async fn show_group(
        &self,
        name: &str,
    ) -> Result<(Namespace, Vec<(String, Role)>, Vec<kura_db::Repo>)> {
        let ns = self.group(name).await?;
        let members = self.db.group_members(ns.id).await?;
        let repos = self
            .db
            .list_repos()
            .await?
            .into_iter()
            .filter(|r| r.namespace_id == ns.id)
            .collect();
        Ok((ns, members, repos))
    }

    /// The repositories of a namespace, by full name.
    async fn repos_in(&self, namespace_id: i64) -> Result<Vec<String>> {
        Ok(self
            .db
            .list_repos()
            .await?
            .into_iter()
            .filter(|r| r.namespace_id == namespace_id)
            .map(|r| r.full_name())
            .collect())
    }

    fn refuse_while_holding(what: &str, repos: &[String]) -> Result<()> {
        if repos.is_empty() {
            return Ok(());
        }
        Err(OpsError::Invalid(format!(
            "{what} still holds {} repositories ({}): delete them (kura repo delete) or move them to another namespace (kura repo rename) first",
            repos.len(),
            repos.join(", ")
        )))
    }

    /// Deletes a group that holds no repositories (its memberships go with it).
    pub async fn delete_group(&self, name: &str) -> Result<Namespace> {
        let ns = self.group(name).await?;
        Self::refuse_while_holding(
            &format!("the group {}", ns.name),
            &self.repos_in(ns.id).await?,
        )?;
        self.db.delete_namespace(ns.id).await?;
        Ok(ns)
    }

    /// Deletes a user that owns no repositories, with their tokens, memberships, grants and
    /// sessions. The last enabled site admin stays.
    pub async fn delete_user(&self, name: &str) -> Result<User> {
        let user = self.user(name).await?;
        Self::refuse_while_holding(
            &format!("the user {}", user.name),
            &self.repos_in(user.namespace_id).await?,
        )?;
        if user.is_admin && !user.disabled {
            let admins = self
                .db
                .list_users()
                .await?
                .into_iter()
                .filter(|u| u.is_admin && !u.disabled)
                .count();
            if admins <= 1 {
                return Err(OpsError::Invalid(format!(
                    "{} is the last enabled site admin: make another user an admin first (kura user add NAME --admin)",
                    user.name
                )));
            }
        }
        self.db.delete_namespace(user.namespace_id).await?;
        Ok(user)
    }

    pub async fn set_member(&self, group: &str, user: &str, role: Role) -> Result<()> {
        let ns = self.group(group).await?;
        let user = self.user(user).await?;
        self.db.set_member(ns.id, user.id, role).await?;
        Ok(())
    }

    pub async fn remove_member(&self, group: &str, user: &str) -> Result<()> {
        let ns = self.group(group).await?;
        let user = self.user(user).await?;
        if !self.db.remove_member(ns.id, user.id).await? {
            return Err(OpsError::NotAMember {
                user: user.name,
                group: ns.name,
            });
        }
        Ok(())
    }

    /// The user's role over a whole namespace before any token cap: site admins and the owner
    /// of a user namespace are admins, group members have their role.
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
}
