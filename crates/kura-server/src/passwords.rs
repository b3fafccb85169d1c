//! Password checks, bounded: at most `auth_concurrency` argon2 verifications run at once (each
//! holds about 19 MiB and a core for tens of milliseconds), the rest wait up to
//! `auth_queue_wait` and are then refused. Each slot owns its argon2 working memory, allocated
//! once and reused: freed and reallocated per request, glibc kept hundreds of megabytes. And a
//! short-lived memory of verified credentials (`recent::Recent`), so that git's repeated Basic
//! sign-ins (one per request) do not each pay a fresh argon2. The key covers the user, their
//! current password hash and the password: a changed password or a wrong one never matches.

use std::sync::Mutex;
use std::time::Duration;

use kura_db::secrets::ArgonMemory;
use kura_db::User;
use tokio::sync::Semaphore;

use crate::recent::{Recent, Slot};

/// Why a check did not give an answer.
#[derive(Debug)]
pub enum Busy {
    /// Every verification slot stayed taken for the whole wait.
    Saturated,
    /// The blocking task failed.
    Failed(String),
}

pub struct Passwords {
    slots: Semaphore,
    /// One working memory per slot; a permit guarantees one is free.
    memory: Mutex<Pool>,
    wait: Duration,
    verified: Recent<()>,
}

/// The working memories not in use, and when one was last handed out.
#[derive(Default)]
struct Pool {
    free: Vec<ArgonMemory>,
    last_used: Option<std::time::Instant>,
}

impl Passwords {
    /// Frees the working memories when no password was checked for `idle`: a burst of
    /// sign-ins should not keep about 19 MiB per slot for the rest of the process's life.
    /// Returns how many were freed.
    pub fn release_idle(&self, idle: Duration) -> usize {
        let mut pool = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if pool.last_used.is_some_and(|t| t.elapsed() < idle) {
            return 0;
        }
        let n = pool.free.len();
        pool.free = Vec::new();
        n
    }

    pub fn new(concurrency: usize, wait: Duration, ttl: Duration) -> Passwords {
        Passwords {
            slots: Semaphore::new(concurrency.max(1)),
            memory: Mutex::new(Pool::default()),
            wait,
            verified: Recent::new(ttl),
        }
    }

    fn cache_key(&self, user: &User, password: &str) -> Slot {
        self.verified.slot(&[
            user.id.to_string().as_bytes(),
            user.password_hash.as_bytes(),
            password.as_bytes(),
        ])
    }

    /// Whether `password` is `user`'s (`None`: unknown user, checked against a dummy hash).
    /// `Ok(true)` from the cache costs no argon2; `on_verify` is called for each real one.
    pub async fn check(
        &self,
        user: Option<&User>,
        password: String,
        on_verify: impl FnOnce(),
    ) -> Result<bool, Busy> {
        let key = user.map(|u| self.cache_key(u, &password));
        if key.as_ref().is_some_and(|k| self.verified.get(k).is_some()) {
            return Ok(true);
        }
        let _permit = tokio::time::timeout(self.wait, self.slots.acquire())
            .await
            .map_err(|_| Busy::Saturated)?
            .map_err(|e| Busy::Failed(e.to_string()))?;
        on_verify();
        let hash = user.map(|u| u.password_hash.clone());
        let mut memory = {
            let mut pool = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            pool.last_used = Some(std::time::Instant::now());
            pool.free.pop().unwrap_or_default()
        };
        let (ok, memory) = tokio::task::spawn_blocking(move || {
            let ok = crate::ops::verify_password(hash.as_deref(), &password, &mut memory);
            (ok, memory)
        })
        .await
        .map_err(|e| Busy::Failed(e.to_string()))?;
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .free
            .push(memory);
        if let (true, Some(k)) = (ok, key) {
            self.verified.put(k, ());
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(hash: String) -> User {
        User {
            id: 7,
            namespace_id: 1,
            name: "bob".into(),
            password_hash: hash,
            is_admin: false,
            disabled: false,
            created_at: 0,
            directory: None,
        }
    }

    #[tokio::test]
    async fn verified_credentials_are_cached_and_nothing_else() {
        let p = Passwords::new(2, Duration::from_secs(5), Duration::from_secs(60));
        let bob = user(kura_db::secrets::hash_password("right-password"));
        let mut runs = 0;
        assert!(p
            .check(Some(&bob), "right-password".into(), || runs += 1)
            .await
            .unwrap());
        assert!(p
            .check(Some(&bob), "right-password".into(), || runs += 1)
            .await
            .unwrap());
        assert_eq!(runs, 1, "the second sign-in came from the cache");
        assert!(!p
            .check(Some(&bob), "wrong-password".into(), || runs += 1)
            .await
            .unwrap());
        assert!(!p
            .check(Some(&bob), "wrong-password".into(), || runs += 1)
            .await
            .unwrap());
        assert_eq!(runs, 3, "wrong passwords are never cached");
        // a new password hash (the password was changed) does not match the old entry
        let changed = user(kura_db::secrets::hash_password("another-password"));
        assert!(!p
            .check(Some(&changed), "right-password".into(), || runs += 1)
            .await
            .unwrap());
        assert_eq!(runs, 4);
        assert!(!p
            .check(None, "right-password".into(), || runs += 1)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn saturated_slots_refuse_after_the_wait() {
        let p = Passwords::new(1, Duration::from_millis(50), Duration::from_secs(60));
        let _held = p.slots.acquire().await.unwrap();
        let r = p.check(None, "x".into(), || {}).await;
        assert!(matches!(r, Err(Busy::Saturated)), "{r:?}");
    }

    #[tokio::test]
    async fn idle_working_memory_is_freed() {
        let p = Passwords::new(2, Duration::from_secs(5), Duration::from_secs(0));
        let bob = user(kura_db::secrets::hash_password("right-password"));
        assert!(p
            .check(Some(&bob), "right-password".into(), || {})
            .await
            .unwrap());
        assert_eq!(
            p.release_idle(Duration::from_secs(60)),
            0,
            "used just now: kept"
        );
        assert_eq!(p.release_idle(Duration::ZERO), 1, "idle: freed");
        assert_eq!(p.release_idle(Duration::ZERO), 0);
        // and a later check allocates again
        assert!(p
            .check(Some(&bob), "right-password".into(), || {})
            .await
            .unwrap());
    }
}
