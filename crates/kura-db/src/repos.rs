//! Repositories and per-repository grants.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::model::{role, Repo, Role};
use crate::{conflict, now, Db, Result, Tx};

const REPO_SELECT: &str = "SELECT r.id, r.namespace_id, n.name AS namespace, r.name, r.is_public, \
     r.default_branch, r.created_at FROM repos r JOIN namespaces n ON n.id = r.namespace_id";

fn repo(row: &AnyRow) -> Result<Repo> {
    Ok(Repo {
        id: row.try_get("id")?,
        namespace_id: row.try_get("namespace_id")?,
        namespace: row.try_get("namespace")?,
        name: row.try_get("name")?,
        is_public: row.try_get::<i64, _>("is_public")? != 0,
        default_branch: row.try_get("default_branch")?,
        created_at: row.try_get("created_at")?,
    })
}

/// What a new repository looks like.
pub struct NewRepo<'a> {
    pub namespace_id: i64,
    pub name: &'a str,
    pub is_public: bool,
    pub default_branch: &'a str,
}

impl Db {
    /// Inserts the row inside `tx`, so the caller can create the directory before committing.
    pub async fn insert_repo(tx: &mut Tx, new: &NewRepo<'_>, namespace: &str) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO repos (namespace_id, name, key, is_public, default_branch, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.namespace_id)
        .bind(new.name)
        .bind(new.name.to_lowercase())
        .bind(new.is_public as i64)
        .bind(new.default_branch)
        .bind(now())
        .fetch_one(&mut **tx)
        .await
        .map_err(conflict(format!("repository {namespace}/{}", new.name)))?;
        Ok(id)
    }

    pub async fn repo_by_name(&self, namespace: &str, name: &str) -> Result<Option<Repo>> {
        let row = sqlx::query(&format!("{REPO_SELECT} WHERE n.key = $1 AND r.key = $2"))
            .bind(namespace.to_lowercase())
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(repo).transpose()
    }

    pub async fn repo_by_id(&self, id: i64) -> Result<Option<Repo>> {
        let row = sqlx::query(&format!("{REPO_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(repo).transpose()
    }

    pub async fn list_repos(&self) -> Result<Vec<Repo>> {
        let rows = sqlx::query(&format!("{REPO_SELECT} ORDER BY n.key, r.key"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(repo).collect()
    }

    pub async fn delete_repo(&self, repo_id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Children first: SQLite enforces ON DELETE CASCADE, but explicit deletes keep both
        // backends identical whatever the connection's foreign-key setting.
        for table in [
            "DELETE FROM protected_branch_pushers WHERE protection_id IN \
             (SELECT id FROM protected_branches WHERE repo_id = $1)",
            "DELETE FROM protected_branches WHERE repo_id = $1",
            "DELETE FROM repo_grants WHERE repo_id = $1",
            "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE repo_id = $1 \
             OR target_id IN (SELECT id FROM delivery_targets WHERE repo_id = $1))",
            "DELETE FROM deliveries WHERE repo_id = $1 OR target_id IN (SELECT id FROM delivery_targets WHERE repo_id = $1)",
            "DELETE FROM delivery_targets WHERE repo_id = $1",
            "DELETE FROM pushes WHERE repo_id = $1",
            "DELETE FROM repo_maintenance WHERE repo_id = $1",
            "DELETE FROM repos WHERE id = $1",
        ] {
            sqlx::query(table).bind(repo_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn rename_repo(
        &self,
        repo_id: i64,
        namespace_id: i64,
        name: &str,
        full_name: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE repos SET namespace_id = $1, name = $2, key = $3 WHERE id = $4")
            .bind(namespace_id)
            .bind(name)
            .bind(name.to_lowercase())
            .bind(repo_id)
            .execute(&self.pool)
            .await
            .map_err(conflict(format!("repository {full_name}")))?;
        Ok(())
    }

    pub async fn update_repo_settings(
        &self,
        repo_id: i64,
        is_public: bool,
        default_branch: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE repos SET is_public = $1, default_branch = $2 WHERE id = $3")
            .bind(is_public as i64)
            .bind(default_branch)
            .bind(repo_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_grant(&self, repo_id: i64, user_id: i64, role: Role) -> Result<()> {
        sqlx::query(
            "INSERT INTO repo_grants (repo_id, user_id, role) VALUES ($1, $2, $3) \
             ON CONFLICT (repo_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(repo_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove_grant(&self, repo_id: i64, user_id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM repo_grants WHERE repo_id = $1 AND user_id = $2")
            .bind(repo_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The strongest role given to the user by group membership or a direct grant.
    pub async fn granted_role(&self, repo: &Repo, user_id: i64) -> Result<Option<Role>> {
        let rows = sqlx::query(
            "SELECT role FROM group_members WHERE namespace_id = $1 AND user_id = $2 \
             UNION ALL SELECT role FROM repo_grants WHERE repo_id = $3 AND user_id = $2",
        )
        .bind(repo.namespace_id)
        .bind(user_id)
        .bind(repo.id)
        .fetch_all(&self.pool)
        .await?;
        let mut strongest = None;
        for row in &rows {
            strongest = strongest.max(Some(role(&row.try_get::<String, _>("role")?)));
        }
        Ok(strongest)
    }
}
