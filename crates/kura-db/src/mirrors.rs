//! Push mirrors: the mirror settings of `delivery_targets` rows of kind `mirror`. Queueing,
//! claiming and recording runs are the generic delivery machinery (`delivery.rs`).

use sqlx::Row;

use crate::delivery::TargetKind;
use crate::{conflict, now, Db, Result};

#[derive(Debug, Clone)]
pub struct Mirror {
    pub id: i64,
    pub repo_id: i64,
    /// `namespace/name` of the repository.
    pub repo: String,
    pub url: String,
    pub branches: Vec<String>,
    pub keep_divergent: bool,
    pub create_remote: bool,
    pub username: Option<String>,
    /// Encrypted password (kura-mirror's secret box), never plaintext.
    pub secret: Option<String>,
    pub created_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub next_attempt_at: i64,
    pub attempts: i64,
    pub last_attempt_at: Option<i64>,
    pub last_attempt_job: i64,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub last_summary: Option<String>,
    pub verified: bool,
    pub remote_heads: Option<String>,
    pub runs: i64,
    pub failures: i64,
}

const MIRROR_SELECT: &str = "SELECT m.id, m.repo_id, n.name || '/' || r.name AS repo, m.url, m.branches, \
     m.keep_divergent, m.create_remote, m.username, m.secret, m.created_at, m.lease_owner, m.lease_until, \
     m.next_attempt_at, m.attempts, m.last_attempt_at, m.last_attempt_job, m.last_success_at, m.last_error, \
     m.last_duration_ms, m.last_summary, m.verified, m.remote_heads, m.runs, m.failures \
     FROM delivery_targets m JOIN repos r ON r.id = m.repo_id JOIN namespaces n ON n.id = r.namespace_id \
     WHERE m.kind = 'mirror'";

fn mirror(row: &sqlx::any::AnyRow) -> Result<Mirror> {
    let branches: String = row.try_get("branches")?;
    let flag = |name: &str| -> Result<bool> { Ok(row.try_get::<i64, _>(name)? != 0) };
    Ok(Mirror {
        id: row.try_get("id")?,
        repo_id: row.try_get("repo_id")?,
        repo: row.try_get("repo")?,
        url: row.try_get("url")?,
        branches: branches
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        keep_divergent: flag("keep_divergent")?,
        create_remote: flag("create_remote")?,
        username: row.try_get("username")?,
        secret: row.try_get("secret")?,
        created_at: row.try_get("created_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        attempts: row.try_get("attempts")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        last_attempt_job: row.try_get("last_attempt_job")?,
        last_success_at: row.try_get("last_success_at")?,
        last_error: row.try_get("last_error")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
        last_summary: row.try_get("last_summary")?,
        verified: flag("verified")?,
        remote_heads: row.try_get("remote_heads")?,
        runs: row.try_get("runs")?,
        failures: row.try_get("failures")?,
    })
}

pub struct NewMirror<'a> {
    pub repo_id: i64,
    pub url: &'a str,
    pub branches: &'a [String],
    pub keep_divergent: bool,
    pub create_remote: bool,
    pub username: Option<&'a str>,
    pub secret: Option<&'a str>,
}

impl Db {
    pub async fn add_mirror(&self, new: &NewMirror<'_>, repo_name: &str) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO delivery_targets (kind, repo_id, url, branches, keep_divergent, create_remote, username, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(TargetKind::Mirror.as_str())
        .bind(new.repo_id)
        .bind(new.url)
        .bind(new.branches.join("\n"))
        .bind(new.keep_divergent as i64)
        .bind(new.create_remote as i64)
        .bind(new.username)
        .bind(new.secret)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!("a mirror of {repo_name} to {}", new.url)))?;
        Ok(id)
    }

    pub async fn mirrors(&self, repo_id: Option<i64>) -> Result<Vec<Mirror>> {
        let rows = match repo_id {
            Some(id) => {
                sqlx::query(&format!("{MIRROR_SELECT} AND m.repo_id = $1 ORDER BY m.id"))
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{MIRROR_SELECT} ORDER BY n.key, r.key, m.id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(mirror).collect()
    }

    pub async fn mirror_by_id(&self, id: i64) -> Result<Option<Mirror>> {
        let row = sqlx::query(&format!("{MIRROR_SELECT} AND m.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(mirror).transpose()
    }
}
