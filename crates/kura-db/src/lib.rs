//! Kura's metadata store: one `Db` over SQLite (default) or PostgreSQL, through sqlx's `Any`
//! driver, plus password and token hashing. It owns the schema and the queries; it knows nothing
//! of HTTP, git or the file system beyond the SQLite file.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod maintenance;
mod mirrors;
mod model;
mod protections;
mod repos;
pub mod secrets;
mod tokens;
mod users;

pub use maintenance::MaintenanceStatus;
pub use mirrors::{Mirror, NewMirror, Pending, RunRecord, RunSuccess};
pub use repos::NewRepo;

pub use model::{Namespace, NamespaceKind, Protection, Repo, Role, Token, User};

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

/// A transaction on either backend.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint was hit; the string names the thing that already exists.
    #[error("{0} already exists")]
    Conflict(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// Which database the URL selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
}

impl Db {
    /// Connects and brings the schema up to date. SQLite files (and their folder) are created.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::BadUrl(redact_url(url)));
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(
                tracing::log::LevelFilter::Warn,
                std::time::Duration::from_secs(2),
            );
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .acquire_timeout(std::time::Duration::from_secs(15))
            .connect_with(options)
            .await?;
        let db = Db { pool };
        match backend {
            Backend::Sqlite => {
                sqlx::query("PRAGMA journal_mode=WAL")
                    .execute(&db.pool)
                    .await?;
                SQLITE_MIGRATIONS.run(&db.pool).await?;
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&db.pool).await?,
        }
        Ok(db)
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    /// Used by readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Seconds since the Unix epoch: every timestamp in the schema.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Replaces the password of a database URL with `***`, for printing and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_string(),
    }
}

fn sqlite_url(url: &str) -> Result<String> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() {
        return Err(DbError::BadUrl(url.to_string()));
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                DbError::Sqlx(sqlx::Error::Configuration(
                    format!("cannot create the folder for {path}: {e}").into(),
                ))
            })?;
        }
    }
    if url.contains('?') {
        Ok(url.to_string())
    } else {
        Ok(format!("sqlite://{path}?mode=rwc"))
    }
}

/// Maps a unique-constraint violation to `Conflict(what)`, other errors unchanged.
pub(crate) fn conflict(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DbError {
    let what = what.into();
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(what),
        _ => DbError::Sqlx(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://kura:hunter2@db:5432/kura"),
            "postgres://kura:***@db:5432/kura"
        );
        assert_eq!(
            redact_url("postgres://kura@db/kura"),
            "postgres://kura@db/kura"
        );
        assert_eq!(redact_url("sqlite://x/kura.db"), "sqlite://x/kura.db");
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;

    async fn temp_db() -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "kura-db-test-{}-{}",
            std::process::id(),
            secrets::random_password()
        ));
        let db = Db::connect(&format!("sqlite://{}", dir.join("kura.db").display()))
            .await
            .unwrap();
        (db, dir)
    }

    #[tokio::test]
    async fn leases_are_exclusive() {
        let (db, dir) = temp_db().await;
        let user = db.create_user("alice", "x", false).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let id = Db::insert_repo(
            &mut tx,
            &NewRepo {
                namespace_id: user.namespace_id,
                name: "app",
                is_public: false,
                default_branch: "main",
            },
            "alice",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        // maintenance: one holder at a time, free again after finishing
        assert!(db.claim_maintenance(id, "a", 60).await.unwrap());
        assert!(!db.claim_maintenance(id, "b", 60).await.unwrap());
        db.finish_maintenance(id, "a", 5, Ok("done")).await.unwrap();
        assert!(db.claim_maintenance(id, "b", 60).await.unwrap());

        // mirrors: nothing to claim until a job is queued; then one claimer only
        let mid = db
            .add_mirror(
                &NewMirror {
                    repo_id: id,
                    url: "codecommit://us-east-1/app",
                    branches: &[],
                    keep_divergent: false,
                    create_remote: false,
                    username: None,
                    secret: None,
                },
                "alice/app",
            )
            .await
            .unwrap();
        assert!(db.claim_mirror("a", 60, None).await.unwrap().is_none());
        let jobs = db.record_push(id, "alice", "[]").await.unwrap();
        assert_eq!(jobs.len(), 1);
        let (m, max_job) = db.claim_mirror("a", 60, None).await.unwrap().unwrap();
        assert_eq!((m.id, max_job), (mid, jobs[0].1));
        assert!(db.claim_mirror("b", 60, None).await.unwrap().is_none());
        // an expired lease (crashed holder) can be taken over
        assert!(db.renew_lease(mid, "a", -10).await.unwrap());
        let (m2, _) = db.claim_mirror("b", 60, None).await.unwrap().unwrap();
        assert_eq!(m2.id, mid);
        // the old holder cannot record over the new one
        assert!(!db.renew_lease(mid, "a", 60).await.unwrap());
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
