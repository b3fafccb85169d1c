//! Users, groups (namespaces) and group membership.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::model::{role, DirectoryFacts, Namespace, NamespaceKind, Role, User};
use crate::{conflict, now, Db, Result};

const FIELDS: [&str; 13] = [
    "id",
    "namespace_id",
    "name",
    "password_hash",
    "is_admin",
    "disabled",
    "created_at",
    "source",
    "directory_dn",
    "display_name",
    "email",
    "directory_disabled",
    "synced_at",
];

/// The user columns of table `alias`, each renamed with `prefix` (a join with another table
/// that has an `id` too reads them back with `user_prefixed`).
pub(crate) fn user_cols(alias: &str, prefix: &str) -> String {
    FIELDS
        .iter()
        .map(|f| format!("{alias}.{f} AS {prefix}{f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

static USER_COLS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| FIELDS.join(", "));

/// A row with the columns of `USER_COLS`.
pub(crate) fn user(row: &AnyRow) -> Result<User> {
    user_prefixed(row, "")
}

pub(crate) fn user_prefixed(row: &AnyRow, p: &str) -> Result<User> {
    let c = |f: &str| format!("{p}{f}");
    let source: String = row.try_get(c("source").as_str())?;
    let directory_disabled = row.try_get::<i64, _>(c("directory_disabled").as_str())? != 0;
    let directory = if source == "ldap" {
        Some(DirectoryFacts {
            dn: row
                .try_get::<Option<String>, _>(c("directory_dn").as_str())?
                .unwrap_or_default(),
            display_name: row.try_get(c("display_name").as_str())?,
            email: row.try_get(c("email").as_str())?,
            disabled: directory_disabled,
            synced_at: row
                .try_get::<Option<i64>, _>(c("synced_at").as_str())?
                .unwrap_or(0),
        })
    } else {
        None
    };
    Ok(User {
        id: row.try_get(c("id").as_str())?,
        namespace_id: row.try_get(c("namespace_id").as_str())?,
        name: row.try_get(c("name").as_str())?,
        password_hash: row.try_get(c("password_hash").as_str())?,
        is_admin: row.try_get::<i64, _>(c("is_admin").as_str())? != 0,
        disabled: row.try_get::<i64, _>(c("disabled").as_str())? != 0 || directory_disabled,
        created_at: row.try_get(c("created_at").as_str())?,
        directory,
    })
}

/// A user's membership in a group, by the group's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub namespace_id: i64,
    pub group: String,
    pub role: Role,
}

impl Db {
    pub async fn user_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Creates the user and its namespace (same name) together.
    pub async fn create_user(&self, name: &str, password_hash: &str, admin: bool) -> Result<User> {
        self.insert_user(name, password_hash, admin, None).await
    }

    /// Creates a user that comes from the directory: no local password (an empty hash never
    /// verifies), with the directory's facts, in one transaction.
    pub async fn create_directory_user(
        &self,
        name: &str,
        facts: &DirectoryFacts,
        admin: bool,
    ) -> Result<User> {
        self.insert_user(name, "", admin, Some(facts)).await
    }

    async fn insert_user(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
        directory: Option<&DirectoryFacts>,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let t = now();
        let (ns_id,): (i64,) = sqlx::query_as(
            "INSERT INTO namespaces (name, key, kind, created_at) VALUES ($1, $2, 'user', $3) RETURNING id",
        )
        .bind(name)
        .bind(name.to_lowercase())
        .bind(t)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("a user or group named {name}")))?;
        let row = sqlx::query(&format!(
            "INSERT INTO users (namespace_id, name, key, password_hash, is_admin, disabled, created_at, \
             source, directory_dn, display_name, email, directory_disabled, synced_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11, $12) RETURNING {}",
            *USER_COLS
        ))
        .bind(ns_id)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(password_hash)
        .bind(admin as i64)
        .bind(t)
        .bind(if directory.is_some() { "ldap" } else { "local" })
        .bind(directory.map(|d| d.dn.clone()))
        .bind(directory.and_then(|d| d.display_name.clone()))
        .bind(directory.and_then(|d| d.email.clone()))
        .bind(directory.is_some_and(|d| d.disabled) as i64)
        .bind(directory.map(|d| d.synced_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("a user named {name}")))?;
        let created = user(&row)?;
        tx.commit().await?;
        Ok(created)
    }

    /// Copies the directory's facts onto a directory user (and the site-admin flag when the
    /// directory decides it); returns the user as stored now.
    pub async fn update_directory_user(
        &self,
        user_id: i64,
        facts: &DirectoryFacts,
        admin: Option<bool>,
    ) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "UPDATE users SET directory_dn = $1, display_name = $2, email = $3, \
             directory_disabled = $4, synced_at = $5, is_admin = COALESCE($6, is_admin) \
             WHERE id = $7 AND source = 'ldap' RETURNING {}",
            *USER_COLS
        ))
        .bind(&facts.dn)
        .bind(&facts.display_name)
        .bind(&facts.email)
        .bind(facts.disabled as i64)
        .bind(facts.synced_at)
        .bind(admin.map(|a| a as i64))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user).transpose()
    }

    /// Deletes a namespace, and with it the user it belongs to (tokens, memberships, grants
    /// and sessions go too). Repositories must be gone first: their rows stop the delete.
    pub async fn delete_namespace(&self, namespace_id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM namespaces WHERE id = $1")
            .bind(namespace_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Every group, with how many members and repositories it has.
    pub async fn list_groups(&self) -> Result<Vec<(Namespace, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT n.id, n.name, \
             (SELECT COUNT(*) FROM group_members m WHERE m.namespace_id = n.id) AS members, \
             (SELECT COUNT(*) FROM repos r WHERE r.namespace_id = n.id) AS repos \
             FROM namespaces n WHERE n.kind = 'group' ORDER BY n.key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    Namespace {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        kind: NamespaceKind::Group,
                    },
                    r.try_get("members")?,
                    r.try_get("repos")?,
                ))
            })
            .collect()
    }

    /// The members of a group (user name, role), by name.
    pub async fn group_members(&self, namespace_id: i64) -> Result<Vec<(String, Role)>> {
        let rows = sqlx::query(
            "SELECT u.name, m.role FROM group_members m JOIN users u ON u.id = m.user_id \
             WHERE m.namespace_id = $1 ORDER BY u.key",
        )
        .bind(namespace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, role(&r.try_get::<String, _>("role")?))))
            .collect()
    }

    /// Every group the user is a member of, with the role.
    pub async fn memberships(&self, user_id: i64) -> Result<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT m.namespace_id, n.name, m.role FROM group_members m \
             JOIN namespaces n ON n.id = m.namespace_id WHERE m.user_id = $1 ORDER BY n.key",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Membership {
                    namespace_id: r.try_get("namespace_id")?,
                    group: r.try_get("name")?,
                    role: role(&r.try_get::<String, _>("role")?),
                })
            })
            .collect()
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {} FROM users WHERE key = $1", *USER_COLS))
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {} FROM users WHERE id = $1", *USER_COLS))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {} FROM users ORDER BY key", *USER_COLS))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user).collect()
    }

    pub async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_disabled(&self, user_id: i64, disabled: bool) -> Result<()> {
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled as i64)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn create_group(&self, name: &str) -> Result<Namespace> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO namespaces (name, key, kind, created_at) VALUES ($1, $2, 'group', $3) RETURNING id",
        )
        .bind(name)
        .bind(name.to_lowercase())
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!("a user or group named {name}")))?;
        Ok(Namespace {
            id,
            name: name.to_string(),
            kind: NamespaceKind::Group,
        })
    }

    pub async fn namespace_by_name(&self, name: &str) -> Result<Option<Namespace>> {
        let row = sqlx::query("SELECT id, name, kind FROM namespaces WHERE key = $1")
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let kind: String = row.try_get("kind")?;
        Ok(Some(Namespace {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            kind: if kind == "group" {
                NamespaceKind::Group
            } else {
                NamespaceKind::User
            },
        }))
    }

    pub async fn set_member(&self, namespace_id: i64, user_id: i64, role: Role) -> Result<()> {
        sqlx::query(
            "INSERT INTO group_members (namespace_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(namespace_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Returns whether a membership was removed.
    pub async fn remove_member(&self, namespace_id: i64, user_id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM group_members WHERE namespace_id = $1 AND user_id = $2")
            .bind(namespace_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn member_role(&self, namespace_id: i64, user_id: i64) -> Result<Option<Role>> {
        let row =
            sqlx::query("SELECT role FROM group_members WHERE namespace_id = $1 AND user_id = $2")
                .bind(namespace_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Ok(role(&r.try_get::<String, _>("role")?)))
            .transpose()
    }
}
