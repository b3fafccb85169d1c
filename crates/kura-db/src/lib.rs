//! Kura's metadata store: one `Db` over SQLite (default) or PostgreSQL, through sqlx's `Any`
//! driver, plus password and token hashing. It owns the schema and the queries; it knows nothing
//! of HTTP, git or the file system beyond the SQLite file.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod delivery;
mod maintenance;
mod mirrors;
mod model;
mod protections;
mod pushes;
mod replicas;
mod repos;
pub mod secrets;
mod sessions;
mod tokens;
mod triggers;
#[cfg(test)]
mod upgrade_tests;
mod users;

pub use delivery::{Pending, Queued, RunRecord, RunSuccess, TargetKind};
pub use maintenance::MaintenanceStatus;
pub use mirrors::{Mirror, NewMirror};
pub use pushes::{Push, PushedRef};
pub use replicas::{Lease, Replica};
pub use repos::NewRepo;
pub use sessions::WebSession;
pub use triggers::{
    DeliveryAttempt, DeliveryFilter, DeliveryState, NewTrigger, Trigger, TriggerDelivery,
};

pub use model::{DirectoryFacts, Namespace, NamespaceKind, Protection, Repo, Role, Token, User};
pub use users::Membership;

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
    /// The first connection failed; the text says why and what to do.
    #[error("{0}")]
    Connect(String),
}

/// How long the first connection to PostgreSQL may take before Kura says it does not answer.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One connection first, with a short timeout, so that a wrong host, port, database name or
/// password is reported in words (the pool would retry for its whole acquire timeout and then
/// say only that it timed out).
async fn probe_postgres(url: &str, options: &AnyConnectOptions) -> Result<()> {
    use sqlx::Connection;
    let parsed = url::Url::parse(url).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_else(|| "localhost".into());
    let port = parsed.as_ref().and_then(|u| u.port()).unwrap_or(5432);
    let user = parsed
        .as_ref()
        .map(|u| u.username().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "(default user)".into());
    let db = parsed
        .as_ref()
        .map(|u| u.path().trim_start_matches('/').to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    let at = format!("{host}:{port}");
    let r = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::AnyConnection::connect_with(options)).await;
    let e = match r {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Ok(());
        }
        Ok(Err(e)) => e,
        Err(_) => {
            return Err(DbError::Connect(format!(
                "PostgreSQL at {at} did not answer within {}s: check that it runs and that database_url names the right host and port",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    let code = match &e {
        sqlx::Error::Database(d) => d.code().map(|c| c.to_string()),
        _ => None,
    };
    let msg = match code.as_deref() {
        Some("3D000") => format!(
            "the database {db} does not exist on the PostgreSQL server at {at}: create it (for example: createdb -h {host} -p {port} -U {user} {db}) or name another in database_url"
        ),
        Some("28P01") | Some("28000") => format!(
            "PostgreSQL at {at} refused user {user}: check the user name and password in database_url"
        ),
        _ => match &e {
            sqlx::Error::Io(io) => format!(
                "cannot connect to PostgreSQL at {at} ({io}): check that it runs and that database_url names the right host and port"
            ),
            sqlx::Error::Database(d) => format!("PostgreSQL at {at} refused the connection: {}", d.message()),
            other => format!("cannot connect to PostgreSQL at {at}: {other}"),
        },
    };
    Err(DbError::Connect(msg))
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
    postgres: bool,
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
        let sqlite = backend == Backend::Sqlite;
        if !sqlite {
            probe_postgres(&url, &options).await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 10 })
            // Short: an interactive request that cannot get a connection should fail clearly
            // (503) rather than hang; a database back within this is simply waited for.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // With WAL, NORMAL syncs at checkpoints instead of every commit: a
                        // crash of Kura loses nothing, a power loss at most the last commits,
                        // and the file is never corrupted. Every push writes the push log.
                        sqlx::query("PRAGMA synchronous=NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let db = Db {
            pool,
            postgres: !sqlite,
        };
        match backend {
            Backend::Sqlite => {
                sqlx::query("PRAGMA journal_mode=WAL")
                    .execute(&db.pool)
                    .await?;
                SQLITE_MIGRATIONS.run(&db.pool).await?;
                // The files hold password hashes: owner-only, whatever the umask made them.
                if let Some(file) = sqlite_file(&url) {
                    use std::os::unix::fs::PermissionsExt;
                    for suffix in ["", "-wal", "-shm"] {
                        let p = format!("{file}{suffix}");
                        let _ =
                            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
                    }
                }
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&db.pool).await?,
        }
        Ok(db)
    }

    /// PostgreSQL (several replicas may share it) rather than SQLite (one server).
    pub fn is_postgres(&self) -> bool {
        self.postgres
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

/// Milliseconds since the Unix epoch: leases and heartbeats of replicas.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Replaces the password of a database URL with `***`, for printing and errors: the one in the
/// user info and a `password` query parameter (both are accepted by PostgreSQL URLs). Anything
/// else is returned as given. A URL that does not parse loses everything from `://` to its last
/// `@` instead, so that a password is never shown.
pub fn redact_url(url: &str) -> String {
    const HIDDEN: &str = "***";
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_unparsable(url);
    };
    let mut changed = false;
    if parsed.password().is_some() {
        if parsed.set_password(Some(HIDDEN)).is_err() {
            return redact_unparsable(url);
        }
        changed = true;
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    HIDDEN.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_string()
    }
}

/// `scheme://***@rest` when there is an `@` after `://`, else `url` unchanged.
fn redact_unparsable(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The file of a `sqlite://PATH?...` URL.
/// The file of a SQLite URL; none for PostgreSQL and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<String> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
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
            {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
            }
            .map_err(|e| {
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
        assert_eq!(
            redact_url("postgres://:hunter2@db/kura"),
            "postgres://:***@db/kura"
        );
        assert_eq!(
            redact_url("postgresql://kura:p%2Fw@db/kura?sslmode=require"),
            "postgresql://kura:***@db/kura?sslmode=require"
        );
        // a password given as a query parameter
        assert_eq!(
            redact_url("postgres://kura@db/kura?password=hunter2&sslmode=require"),
            "postgres://kura@db/kura?password=***&sslmode=require"
        );
        // no password: returned exactly as given
        assert_eq!(redact_url("sqlite:kura.db"), "sqlite:kura.db");
        assert_eq!(redact_url("kura.db"), "kura.db");
        assert_eq!(redact_url("mysql://db/kura"), "mysql://db/kura");
        // unparsable (bad port, bad IPv6 host): everything up to the last `@` is hidden
        assert_eq!(
            redact_url("postgres://kura:hunter2@db:99999/kura"),
            "postgres://***@db:99999/kura"
        );
        assert_eq!(
            redact_url("postgres://kura:hunter2@[::1/kura"),
            "postgres://***@[::1/kura"
        );
        assert_eq!(redact_url("postgres://[::1/kura"), "postgres://[::1/kura");
        for odd in [
            "postgres://kura:hunter2@db:99999/kura",
            "postgres://kura:hunter2@[::1/kura",
            "postgres://kura:hunter2@db/kura?password=hunter2",
            "http://kura:hunter2@db",
        ] {
            assert!(!redact_url(odd).contains("hunter2"), "{odd}");
        }
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

    /// Every by-name row mapping, on SQLite and, when `KURA_TEST_POSTGRES` holds a URL of an
    /// empty database (tests/run creates one), on PostgreSQL too.
    #[tokio::test]
    async fn rows_map_by_column_name() {
        let (db, dir) = temp_db().await;
        rows_round_trip(&db).await;
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
        if let Ok(url) = std::env::var("KURA_TEST_POSTGRES") {
            let db = Db::connect(&url).await.unwrap();
            rows_round_trip(&db).await;
            db.close().await;
        }
    }

    async fn rows_round_trip(db: &Db) {
        assert_eq!(db.user_count().await.unwrap(), 0);
        let alice = db.create_user("Alice", "hash-a", true).await.unwrap();
        assert_eq!(
            (alice.name.as_str(), alice.password_hash.as_str()),
            ("Alice", "hash-a")
        );
        assert!(alice.is_admin && !alice.disabled && alice.created_at > 0);
        let bob = db.create_user("bob", "hash-b", false).await.unwrap();
        db.set_disabled(bob.id, true).await.unwrap();
        let bob = db.user_by_name("BOB").await.unwrap().unwrap();
        assert!(!bob.is_admin && bob.disabled);
        let a = db.user_by_id(alice.id).await.unwrap().unwrap();
        assert_eq!((a.id, a.namespace_id), (alice.id, alice.namespace_id));
        assert!(db.user_by_id(-1).await.unwrap().is_none());
        let names: Vec<String> = db
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["Alice", "bob"]);

        let group = db.create_group("Team").await.unwrap();
        let ns = db.namespace_by_name("team").await.unwrap().unwrap();
        assert_eq!((ns.id, ns.name.as_str()), (group.id, "Team"));
        assert_eq!(ns.kind, NamespaceKind::Group);
        let ns = db.namespace_by_name("alice").await.unwrap().unwrap();
        assert_eq!((ns.id, ns.kind), (alice.namespace_id, NamespaceKind::User));
        db.set_member(group.id, bob.id, Role::Write).await.unwrap();
        assert_eq!(
            db.member_role(group.id, bob.id).await.unwrap(),
            Some(Role::Write)
        );
        assert_eq!(
            db.memberships(bob.id).await.unwrap(),
            [crate::Membership {
                namespace_id: group.id,
                group: "Team".into(),
                role: Role::Write
            }]
        );

        // a directory user: no password, the directory's facts, read back through every join
        assert!(alice.directory.is_none() && alice.source() == "local");
        let facts = DirectoryFacts {
            dn: "cn=carol,ou=people,dc=test".into(),
            display_name: Some("Carol C".into()),
            email: Some("carol@test".into()),
            disabled: false,
            synced_at: 1_000,
        };
        let carol = db
            .create_directory_user("carol", &facts, false)
            .await
            .unwrap();
        assert_eq!(carol.directory.as_ref(), Some(&facts));
        assert_eq!(
            (carol.source(), carol.password_hash.as_str()),
            ("directory", "")
        );
        let off = DirectoryFacts {
            disabled: true,
            synced_at: 2_000,
            ..facts.clone()
        };
        let carol = db
            .update_directory_user(carol.id, &off, Some(true))
            .await
            .unwrap()
            .unwrap();
        assert!(
            carol.disabled && carol.is_admin,
            "disabled by the directory, admin by its group"
        );
        assert_eq!(carol.directory.as_ref(), Some(&off));
        assert!(
            db.update_directory_user(alice.id, &off, None)
                .await
                .unwrap()
                .is_none(),
            "a local user is never rewritten from the directory"
        );
        db.create_token(carol.id, "ci", "h-carol", Role::Read, None)
            .await
            .unwrap();
        let (_, holder) = db.token_by_hash("h-carol").await.unwrap().unwrap();
        assert_eq!(holder.directory.as_ref(), Some(&off));
        assert!(
            holder.disabled,
            "a token's holder carries the directory's verdict"
        );
        db.create_session("s-carol", carol.id, "c", i64::MAX / 2)
            .await
            .unwrap();
        let sess = db.session_by_hash("s-carol").await.unwrap().unwrap();
        assert_eq!(sess.user.directory.as_ref(), Some(&off));
        assert_eq!(db.member_role(group.id, alice.id).await.unwrap(), None);

        let mut tx = db.begin().await.unwrap();
        let id = Db::insert_repo(
            &mut tx,
            &NewRepo {
                namespace_id: group.id,
                name: "App",
                is_public: true,
                default_branch: "trunk",
            },
            "Team",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let repo = db.repo_by_name("TEAM", "app").await.unwrap().unwrap();
        assert_eq!(repo.full_name(), "Team/App");
        assert_eq!((repo.id, repo.namespace_id), (id, group.id));
        assert!(repo.is_public && repo.default_branch == "trunk" && repo.created_at > 0);
        assert_eq!(db.repo_by_id(id).await.unwrap().unwrap().name, "App");
        assert_eq!(db.list_repos().await.unwrap().len(), 1);
        assert_eq!(
            db.granted_role(&repo, bob.id).await.unwrap(),
            Some(Role::Write)
        );
        db.set_grant(id, bob.id, Role::Admin).await.unwrap();
        assert_eq!(
            db.granted_role(&repo, bob.id).await.unwrap(),
            Some(Role::Admin)
        );
        assert_eq!(db.granted_role(&repo, alice.id).await.unwrap(), None);

        let t = db
            .create_token(alice.id, "ci", "h1", Role::Read, Some(123))
            .await
            .unwrap();
        assert_eq!((t.user_id, t.name.as_str()), (alice.id, "ci"));
        assert_eq!(
            (t.scope, t.expires_at, t.last_used_at),
            (Role::Read, Some(123), None)
        );
        db.touch_token(t.id, 77).await.unwrap();
        let t2 = db.token_by_id(t.id).await.unwrap().unwrap();
        assert_eq!((t2.last_used_at, t2.created_at), (Some(77), t.created_at));
        assert_eq!(db.list_tokens(alice.id).await.unwrap().len(), 1);
        let (ht, hu) = db.token_by_hash("h1").await.unwrap().unwrap();
        assert_eq!(
            (ht.id, ht.name.as_str(), ht.scope),
            (t.id, "ci", Role::Read)
        );
        assert_eq!((hu.id, hu.namespace_id), (alice.id, alice.namespace_id));
        assert_eq!(
            (hu.name.as_str(), hu.password_hash.as_str()),
            ("Alice", "hash-a")
        );
        assert!(hu.is_admin && !hu.disabled);
        assert_eq!(hu.created_at, alice.created_at);
        assert!(db.token_by_hash("nope").await.unwrap().is_none());

        db.protect(id, "main", &[bob.id, alice.id]).await.unwrap();
        db.protect(id, "rel/*", &[]).await.unwrap();
        let p = db.protections(id).await.unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].pattern.as_str(), p[0].allow_push.clone()),
            ("main", vec!["Alice".to_string(), "bob".into()])
        );
        assert_eq!((p[1].pattern.as_str(), p[1].allow_push.len()), ("rel/*", 0));

        let s = db.maintenance_status(id).await.unwrap();
        assert_eq!((s.runs, s.running_by), (0, None));
        assert!(db.claim_maintenance(id, "w1", 60).await.unwrap());
        let s = db.maintenance_status(id).await.unwrap();
        assert_eq!(s.running_by.as_deref(), Some("w1"));
        assert!(s.last_started_at.is_some() && s.last_finished_at.is_none());
        db.finish_maintenance(id, "w1", 42, Ok("packed"))
            .await
            .unwrap();
        let s = db.maintenance_status(id).await.unwrap();
        assert_eq!(s.running_by, None);
        assert_eq!((s.runs, s.last_duration_ms), (1, Some(42)));
        assert_eq!(
            (s.last_result.as_deref(), s.last_error),
            (Some("packed"), None)
        );
        assert!(s.last_finished_at.is_some());

        // A failed run is not "maintained": it is retried with a doubling wait.
        let day_ago = now() - 24 * 3600;
        assert!(!db
            .repos_due_for_maintenance(day_ago)
            .await
            .unwrap()
            .contains(&id));
        for (n, wait) in [(1, 60), (2, 120)] {
            assert!(db.claim_maintenance(id, "w1", 60).await.unwrap());
            db.finish_maintenance(id, "w1", 7, Err("bad object refs/heads/main"))
                .await
                .unwrap();
            let s = db.maintenance_status(id).await.unwrap();
            assert_eq!(s.failures, n);
            assert_eq!(s.last_error.as_deref(), Some("bad object refs/heads/main"));
            assert_eq!(
                s.last_result.as_deref(),
                Some("packed"),
                "the last good result stays"
            );
            assert_eq!(s.retry_at.unwrap() - s.last_finished_at.unwrap(), wait);
            assert!(!db
                .repos_due_for_maintenance(day_ago)
                .await
                .unwrap()
                .contains(&id));
        }
        sqlx::query("UPDATE repo_maintenance SET retry_at = $1 WHERE repo_id = $2")
            .bind(now() - 1)
            .bind(id)
            .execute(&db.pool)
            .await
            .unwrap();
        assert!(
            db.repos_due_for_maintenance(day_ago)
                .await
                .unwrap()
                .contains(&id),
            "a failed run is due again once its retry time came, however recent the run"
        );
        assert!(db.claim_maintenance(id, "w1", 60).await.unwrap());
        db.finish_maintenance(id, "w1", 9, Ok("repacked"))
            .await
            .unwrap();
        let s = db.maintenance_status(id).await.unwrap();
        assert_eq!((s.failures, s.retry_at, s.last_error), (0, None, None));
        assert_eq!(maintenance::maintenance_retry_secs(30), 6 * 3600);
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
        let k = TargetKind::Mirror;
        assert!(db.claim_delivery(k, "a", 60, None).await.unwrap().is_none());
        let (_, jobs) = db.record_push(id, "alice", "http", &[]).await.unwrap();
        assert_eq!(jobs.len(), 1);
        let (m, max_job) = db.claim_delivery(k, "a", 60, None).await.unwrap().unwrap();
        assert_eq!((m, max_job), (mid, jobs[0].delivery_id));
        assert!(db.claim_delivery(k, "b", 60, None).await.unwrap().is_none());
        // an expired lease (crashed holder) can be taken over
        assert!(db.renew_lease(mid, "a", -10).await.unwrap());
        let (m2, _) = db.claim_delivery(k, "b", 60, None).await.unwrap().unwrap();
        assert_eq!(m2, mid);
        // the old holder cannot record over the new one
        assert!(!db.renew_lease(mid, "a", 60).await.unwrap());
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
