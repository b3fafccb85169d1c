//! The server's side of directory sign-in: successful checks remembered briefly (git sends
//! the password with every request of a clone), and the periodic sync.
//!
//! A remembered check is keyed by a key of this process, the login as typed and the password,
//! and holds the user and the `synced_at` of its directory facts: a wrong or changed password
//! never matches, and a sign-in or sync that rewrote the facts (here or on another replica)
//! makes the remembered check worthless at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use kura_db::User;

use crate::ops::Ops;
use crate::recent::Recent;

/// A check remembered as (user id, `synced_at` it saw).
pub struct Remembered(Recent<(i64, i64)>);

impl Remembered {
    pub fn new(ttl: Duration) -> Remembered {
        Remembered(Recent::new(ttl))
    }

    fn slot(&self, login: &str, password: &str) -> crate::recent::Slot {
        self.0
            .slot(&[login.to_lowercase().as_bytes(), password.as_bytes()])
    }

    /// The user id a recent check of this login and password gave, with the `synced_at` it
    /// saw; the caller compares that with the user as stored now.
    pub fn recall(&self, login: &str, password: &str) -> Option<(i64, i64)> {
        self.0.get(&self.slot(login, password))
    }

    pub fn remember(&self, login: &str, password: &str, user: &User) {
        let Some(d) = &user.directory else { return };
        if user.disabled {
            return;
        }
        self.0
            .put(self.slot(login, password), (user.id, d.synced_at));
    }
}

/// The directory's state for `/readyz`, which must answer at once even when the directory
/// hangs (a load balancer's health check times out in seconds): each call returns what the
/// last check found and starts a new check in the background when that one is older than
/// `HEALTH_AGE`.
#[derive(Default)]
pub struct Health {
    last: Mutex<Option<(Instant, Result<String, String>)>>,
    checking: std::sync::atomic::AtomicBool,
}

const HEALTH_AGE: Duration = Duration::from_secs(5);

impl Health {
    pub fn line(self: &std::sync::Arc<Self>, ops: &Ops) -> Option<String> {
        ops.directory()?;
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let stale = last
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= HEALTH_AGE);
        if stale
            && !self
                .checking
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let (me, ops) = (self.clone(), ops.clone());
            tokio::spawn(async move {
                if let Some(r) = ops.directory_health().await {
                    *me.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), r));
                }
                me.checking
                    .store(false, std::sync::atomic::Ordering::SeqCst);
            });
        }
        Some(match last {
            None => "directory: not checked yet\n".to_string(),
            Some((_, Ok(url))) => format!("directory: ok ({url})\n"),
            Some((_, Err(e))) => format!("directory: unavailable ({e})\n"),
        })
    }
}

/// Runs the directory sync every `interval` (the first one after `interval`: sign-ins keep
/// users current in between).
pub fn spawn_sync(ops: Ops, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match ops.directory_sync().await {
                Ok(r) => {
                    for c in &r.changes {
                        tracing::info!(change = %c, "directory sync");
                    }
                    for p in &r.problems {
                        tracing::warn!(problem = %p, "directory sync");
                    }
                    tracing::info!(
                        checked = r.checked,
                        disabled = r.disabled.len(),
                        enabled = r.enabled.len(),
                        changes = r.changes.len(),
                        problems = r.problems.len(),
                        "directory sync done"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "directory sync stopped; the next one retries")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, synced_at: i64) -> User {
        User {
            id,
            namespace_id: 1,
            name: "alice".into(),
            password_hash: String::new(),
            is_admin: false,
            disabled: false,
            created_at: 0,
            directory: Some(kura_db::DirectoryFacts {
                dn: "cn=alice".into(),
                display_name: None,
                email: None,
                disabled: false,
                synced_at,
            }),
        }
    }

    #[test]
    fn only_the_same_login_and_password_are_recalled() {
        let r = Remembered::new(Duration::from_secs(60));
        r.remember("Alice", "pw-1", &user(7, 100));
        assert_eq!(r.recall("alice", "pw-1"), Some((7, 100)));
        assert_eq!(r.recall("alice", "pw-2"), None);
        assert_eq!(r.recall("alice", ""), None);
        assert_eq!(r.recall("bob", "pw-1"), None);
        let mut off = user(8, 1);
        off.disabled = true;
        r.remember("carol", "pw", &off);
        assert_eq!(
            r.recall("carol", "pw"),
            None,
            "a disabled user is not remembered"
        );
        let zero = Remembered::new(Duration::ZERO);
        zero.remember("alice", "pw-1", &user(7, 100));
        assert_eq!(zero.recall("alice", "pw-1"), None);
    }
}
