//! Database backends: `Backend` and a fresh PostgreSQL database per test (`PgDb`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct PgDb {
    pub name: String,
    pub url: String,
}

fn psql(sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `psql` (PostgreSQL client) for the postgres e2e tests: {e}")
        })
}

impl PgDb {
    pub fn create() -> PgDb {
        let name = format!(
            "kura_t_{}_{}_{:08x}",
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::SeqCst),
            random_u64() as u32
        );
        let out = psql(&format!("CREATE DATABASE \"{name}\""));
        if !out.status.success() {
            panic!(
                "PostgreSQL is required by the e2e suite and is not usable at 127.0.0.1:5432 \
                 (user postgres): `CREATE DATABASE {name}` failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        PgDb { name, url }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let out = psql(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ));
        if !out.status.success() {
            eprintln!(
                "warning: could not drop test database {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
