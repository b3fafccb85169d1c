//! Users, groups (namespaces) and group membership.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::model::{role, Namespace, NamespaceKind, Role, User};
use crate::{conflict, now, Db, Result};

const USER_COLS: &str = "id, namespace_id, name, password_hash, is_admin, disabled, created_at";

/// A row with the columns of `USER_COLS`.
pub(crate) fn user(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        namespace_id: row.try_get("namespace_id")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
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
            "INSERT INTO users (namespace_id, name, key, password_hash, is_admin, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6) RETURNING {USER_COLS}"
        ))
        .bind(ns_id)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(password_hash)
        .bind(admin as i64)
        .bind(t)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("a user named {name}")))?;
        let created = user(&row)?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE key = $1"))
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY key"))
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
