//! The server's side of directory sign-in: successful checks remembered briefly (git sends
//! the password with every request of a clone), and the periodic sync.
//!
//! A remembered check is keyed by a key of this process, the login as typed and the password,
//! and holds the user and the `synced_at` of its directory facts: a wrong or changed password
//! never matches, and a sign-in or sync that rewrote the facts (here or on another replica)
//! makes the remembered check worthless at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kura_db::User;
use sha2::{Digest, Sha256};

use crate::ops::Ops;

/// At most this many remembered checks; beyond, expired ones go, then all.
const MAX_REMEMBERED: usize = 10_000;

pub struct Remembered {
    key: [u8; 32],
    ttl: Duration,
    map: Mutex<HashMap<[u8; 32], (i64, i64, Instant)>>,
}

impl Remembered {
    pub fn new(ttl: Duration) -> Remembered {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        Remembered {
            key,
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, login: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        for part in [login.to_lowercase().as_bytes(), password.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.finalize().into()
    }

    /// The user id a recent check of this login and password gave, with the `synced_at` it
    /// saw; the caller compares that with the user as stored now.
    pub fn recall(&self, login: &str, password: &str) -> Option<(i64, i64)> {
        if self.ttl.is_zero() {
            return None;
        }
        let k = self.slot(login, password);
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&k)
            .filter(|(_, _, at)| at.elapsed() < self.ttl)
            .map(|(id, synced, _)| (*id, *synced))
    }

    pub fn remember(&self, login: &str, password: &str, user: &User) {
        let Some(d) = &user.directory else { return };
        if self.ttl.is_zero() || user.disabled {
            return;
        }
        let k = self.slot(login, password);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_REMEMBERED {
            let ttl = self.ttl;
            map.retain(|_, (_, _, at)| at.elapsed() < ttl);
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
        }
        map.insert(k, (user.id, d.synced_at, Instant::now()));
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
