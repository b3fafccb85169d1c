//! Upgrading a database made by an earlier Kura keeps its rows: the SQLite rebuild of the
//! delivery tables in migration 0006 (and PostgreSQL's in-place change) keep mirrors, their
//! queued deliveries and the foreign keys.

use std::borrow::Cow;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use crate::{Db, DeliveryState, NewTrigger, TargetKind, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

fn before_triggers(all: &Migrator) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= 5)
                .cloned()
                .collect(),
        ),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// Rows as Kura 0005 wrote them: a user, a repository, a mirror with one delivered and one
/// pending run.
const OLD_ROWS: [&str; 6] = [
    "INSERT INTO namespaces (id, name, key, kind, created_at) VALUES (7, 'alice', 'alice', 'user', 1)",
    "INSERT INTO users (id, namespace_id, name, key, password_hash, created_at) VALUES (3, 7, 'alice', 'alice', 'x', 1)",
    "INSERT INTO repos (id, namespace_id, name, key, default_branch, created_at) VALUES (5, 7, 'app', 'app', 'main', 1)",
    "INSERT INTO delivery_targets (id, kind, repo_id, url, branches, created_at, runs) VALUES (11, 'mirror', 5, 'codecommit://us-east-1/app', 'main', 1, 4)",
    "INSERT INTO pushes (id, repo_id, pusher, refs, created_at) VALUES (21, 5, 'alice', '[]', 2)",
    "INSERT INTO deliveries (id, target_id, push_id, created_at, done_at) VALUES (31, 11, 21, 2, 3), (32, 11, NULL, 4, NULL)",
];

async fn check_upgraded(db: &Db) {
    // users of 0005 are local users (migration 0007)
    let alice = db.user_by_name("alice").await.unwrap().unwrap();
    assert!(alice.directory.is_none() && alice.source() == "local" && !alice.disabled);
    let mirrors = db.mirrors(None).await.unwrap();
    assert_eq!(mirrors.len(), 1);
    let m = &mirrors[0];
    assert_eq!(
        (m.id, m.repo.as_str(), m.url.as_str(), m.runs),
        (11, "alice/app", "codecommit://us-east-1/app", 4)
    );
    assert_eq!(m.branches, ["main"]);
    let p = db.pending(11).await.unwrap();
    assert_eq!(
        (p.count, p.oldest_created_at),
        (1, Some(4)),
        "the pending run survives"
    );
    // the queue goes on: the pending run is claimed and finished
    let (id, max) = db
        .claim_delivery(TargetKind::Mirror, "o", 60, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((id, max), (11, 32));
    // a mirror URL stays unique per repository; triggers (also server-wide) are new rows
    assert!(db
        .add_mirror(
            &crate::NewMirror {
                repo_id: 5,
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
        .is_err());
    let t = db
        .add_trigger(&NewTrigger {
            repo_id: None,
            target: "http://h/x",
            settings: "{}",
            secret: None,
        })
        .await
        .unwrap();
    let (_, queued) = db
        .record_push(
            5,
            "alice",
            "http",
            &[crate::PushedRef {
                name: "refs/heads/main".into(),
                old: "0".repeat(40),
                new: "1".repeat(40),
            }],
        )
        .await
        .unwrap();
    assert!(
        queued.iter().any(|q| q.target_id == t && q.trigger),
        "a server-wide trigger gets the push: {queued:?}"
    );
    let d = db
        .trigger_deliveries(crate::DeliveryFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].state, d[0].ref_name.as_str(), d[0].repo.as_deref()),
        (DeliveryState::Pending, "refs/heads/main", Some("alice/app"))
    );
    // deleting the repository takes its mirror and every delivery for it with it
    db.delete_repo(5).await.unwrap();
    assert!(db.mirrors(None).await.unwrap().is_empty());
    assert!(db
        .trigger_deliveries(crate::DeliveryFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
    assert!(
        db.trigger_by_id(t).await.unwrap().is_some(),
        "the server-wide trigger stays"
    );
}

/// A database at `url` as Kura 0005 left it, with `OLD_ROWS`.
async fn make_old_database(url: &str, all: &Migrator) {
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    before_triggers(all).run(&pool).await.unwrap();
    for q in OLD_ROWS {
        sqlx::query(q).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn sqlite_upgrade_keeps_mirrors_and_deliveries() {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!(
        "kura-upgrade-{}-{}",
        std::process::id(),
        crate::secrets::random_password()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("kura.db").display());
    make_old_database(&format!("{url}?mode=rwc"), &SQLITE_MIGRATIONS).await;
    let db = Db::connect(&url).await.unwrap();
    let broken: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(
        broken.is_empty(),
        "foreign keys hold after the rebuild: {broken:?}"
    );
    check_upgraded(&db).await;
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// On PostgreSQL when `KURA_TEST_POSTGRES` names a server (tests/run): in a database of its own.
#[tokio::test]
async fn postgres_upgrade_keeps_mirrors_and_deliveries() {
    let Ok(base) = std::env::var("KURA_TEST_POSTGRES") else {
        return;
    };
    sqlx::any::install_default_drivers();
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap();
    let name = format!("kura_upgrade_{}", std::process::id());
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("KURA_TEST_POSTGRES is not a URL with a database"),
    };
    make_old_database(&url, &POSTGRES_MIGRATIONS).await;
    let db = Db::connect(&url).await.unwrap();
    check_upgraded(&db).await;
    db.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await
        .unwrap();
}
