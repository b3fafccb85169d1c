//! Users, groups (namespaces) and group membership.

use crate::model::{role, Namespace, NamespaceKind, Role, User};
use crate::{conflict, now, Db, Result};

type UserRow = (i64, i64, String, String, i64, i64, i64);
const USER_COLS: &str = "id, namespace_id, name, password_hash, is_admin, disabled, created_at";

fn user(r: UserRow) -> User {
    User {
        id: r.0,
        namespace_id: r.1,
        name: r.2,
        password_hash: r.3,
        is_admin: r.4 != 0,
        disabled: r.5 != 0,
        created_at: r.6,
    }
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
        let row: UserRow = sqlx::query_as(&format!(
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
        tx.commit().await?;
        Ok(user(row))
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLS} FROM users WHERE key = $1"))
                .bind(name.to_lowercase())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(user))
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(user))
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLS} FROM users ORDER BY key"))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(user).collect())
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
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, kind FROM namespaces WHERE key = $1")
                .bind(name.to_lowercase())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, name, kind)| Namespace {
            id,
            name,
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
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT role FROM group_members WHERE namespace_id = $1 AND user_id = $2",
        )
        .bind(namespace_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(r,)| role(&r)))
    }
}
