//! Replicas sharing this database and one data folder: registration with heartbeats, and the
//! per-repository write lease (see ARCHITECTURE.md, "Several replicas on one shared folder").

use crate::{now_ms, Db, Result};

/// A registered `kura serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    pub url: String,
    pub host: String,
    pub heartbeat_at_ms: i64,
}

/// Who holds a repository's write lease and until when, with the holder's registration (none
/// when it is not registered, e.g. it stopped cleanly).
#[derive(Debug, Clone)]
pub struct Lease {
    pub holder: String,
    pub expires_at_ms: i64,
    pub holder_replica: Option<Replica>,
}

impl Db {
    pub async fn register_replica(&self, id: &str, url: &str, host: &str) -> Result<()> {
        let t = now_ms();
        sqlx::query(
            "INSERT INTO replicas (id, url, host, started_at_ms, heartbeat_at_ms) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, host = excluded.host, heartbeat_at_ms = excluded.heartbeat_at_ms",
        )
        .bind(id)
        .bind(url)
        .bind(host)
        .bind(t)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `false` when the row is gone (another replica removed it as dead): register again.
    pub async fn replica_heartbeat(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE replicas SET heartbeat_at_ms = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn remove_replica(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM replicas WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Rows of replicas silent for longer than `silent_ms`, deleted; returns how many.
    pub async fn forget_silent_replicas(&self, silent_ms: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM replicas WHERE heartbeat_at_ms < $1")
            .bind(now_ms() - silent_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub async fn replicas(&self) -> Result<Vec<Replica>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, url, host, heartbeat_at_ms FROM replicas ORDER BY started_at_ms, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, url, host, heartbeat_at_ms)| Replica {
                id,
                url,
                host,
                heartbeat_at_ms,
            })
            .collect())
    }

    /// The key replicas show each other; made once, by whoever asks first.
    pub async fn cluster_key(&self) -> Result<String> {
        sqlx::query(
            "INSERT INTO cluster_keys (name, value) VALUES ('peer', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(crate::secrets::random_password())
        .execute(&self.pool)
        .await?;
        let (v,): (String,) = sqlx::query_as("SELECT value FROM cluster_keys WHERE name = 'peer'")
            .fetch_one(&self.pool)
            .await?;
        Ok(v)
    }

    /// The live write lease of the repository named `namespace/name` (names compared as the
    /// repository lookup does), if any: one query per request about a repository.
    pub async fn live_lease_by_name(&self, namespace: &str, name: &str) -> Result<Option<Lease>> {
        let row: Option<LeaseRow> = sqlx::query_as(&format!(
            "{LEASE_SELECT} JOIN repos r ON r.id = l.repo_id JOIN namespaces n ON n.id = r.namespace_id \
             WHERE n.key = $1 AND r.key = $2 AND l.expires_at_ms > $3"
        ))
        .bind(namespace.to_lowercase())
        .bind(name.to_lowercase())
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(lease))
    }

    pub async fn live_lease(&self, repo_id: i64) -> Result<Option<Lease>> {
        let row: Option<LeaseRow> = sqlx::query_as(&format!(
            "{LEASE_SELECT} WHERE l.repo_id = $1 AND l.expires_at_ms > $2"
        ))
        .bind(repo_id)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(lease))
    }

    /// Takes or renews repository `repo_id`'s write lease for `holder` until `expires_at_ms`:
    /// `Ok(Some(previous))` with the previous holder when it was someone else's (expired) lease,
    /// `Ok(None)` when taken fresh or renewed; `Err(lease)` with the live lease of another.
    pub async fn take_repo_lease(
        &self,
        repo_id: i64,
        holder: &str,
        expires_at_ms: i64,
    ) -> Result<std::result::Result<Option<String>, Lease>> {
        let before: Option<(String,)> =
            sqlx::query_as("SELECT holder FROM repo_leases WHERE repo_id = $1")
                .bind(repo_id)
                .fetch_optional(&self.pool)
                .await?;
        let taken = sqlx::query(
            "INSERT INTO repo_leases (repo_id, holder, expires_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (repo_id) DO UPDATE SET holder = excluded.holder, \
             expires_at_ms = excluded.expires_at_ms, taken = repo_leases.taken + 1 \
             WHERE repo_leases.holder = excluded.holder OR repo_leases.expires_at_ms <= $4",
        )
        .bind(repo_id)
        .bind(holder)
        .bind(expires_at_ms)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if taken.rows_affected() > 0 {
            return Ok(Ok(before.map(|(h,)| h).filter(|h| h != holder)));
        }
        match self.live_lease(repo_id).await? {
            Some(l) => Ok(Err(l)),
            // It expired between the two statements: try once more.
            None => Box::pin(self.take_repo_lease(repo_id, holder, expires_at_ms)).await,
        }
    }

    /// The latest end of `holder`'s live leases, if it holds any.
    pub async fn leases_held_until(&self, holder: &str) -> Result<Option<i64>> {
        let (t,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(expires_at_ms) FROM repo_leases WHERE holder = $1 AND expires_at_ms > $2",
        )
        .bind(holder)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(t)
    }

    /// Moves the end of `holder`'s live lease to `expires_at_ms`; `false` when the lease is no
    /// longer `holder`'s or already ran out (then nothing may be written any more).
    pub async fn renew_repo_lease(
        &self,
        repo_id: i64,
        holder: &str,
        expires_at_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE repo_leases SET expires_at_ms = $1 WHERE repo_id = $2 AND holder = $3 AND expires_at_ms > $4",
        )
        .bind(expires_at_ms)
        .bind(repo_id)
        .bind(holder)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}

/// A lease with its holder's registration; callers add joins and the condition.
const LEASE_SELECT: &str =
    "SELECT l.holder, l.expires_at_ms, p.id, p.url, p.host, p.heartbeat_at_ms \
     FROM repo_leases l LEFT JOIN replicas p ON p.id = l.holder";

type LeaseRow = (
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn lease((holder, expires_at_ms, id, url, host, beat): LeaseRow) -> Lease {
    let holder_replica = match (id, url, host, beat) {
        (Some(id), Some(url), Some(host), Some(heartbeat_at_ms)) => Some(Replica {
            id,
            url,
            host,
            heartbeat_at_ms,
        }),
        _ => None,
    };
    Lease {
        holder,
        expires_at_ms,
        holder_replica,
    }
}
