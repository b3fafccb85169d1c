//! Sign-in throttling, in memory and per process: a sliding window of attempt times per key
//! (client address, user name), each key with its own ceiling. An attempt is counted *before*
//! the expensive check, atomically with the decision to let it through, so a burst of wrong
//! passwords gets at most the ceiling's worth of checks; a success clears the counts again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A throttled key and how many failures it may have in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub max: usize,
}

impl Key {
    pub fn new(name: String, max: u32) -> Key {
        Key {
            name,
            max: max.max(1) as usize,
        }
    }
}

pub struct Throttle {
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Above this many tracked keys, expired ones are swept on the next attempt.
const SWEEP_AT: usize = 10_000;

impl Throttle {
    pub fn new(window: Duration) -> Throttle {
        Throttle {
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt on every key, or refuses it (with the time until the first key frees
    /// up) while any key is at its ceiling. The count stays unless `clear` is called.
    pub fn attempt(&self, keys: &[Key]) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_AT {
            let window = self.window;
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let mut wait: Option<Duration> = None;
        for k in keys {
            let Some(times) = map.get_mut(&k.name) else {
                continue;
            };
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                times.pop_front();
            }
            if times.len() >= k.max {
                // Blocked until enough of the recent attempts age out of the window.
                let unblock_at = times[times.len() - k.max] + self.window;
                let w = unblock_at
                    .saturating_duration_since(now)
                    .max(Duration::from_secs(1));
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for k in keys {
            let times = map.entry(k.name.clone()).or_default();
            times.push_back(now);
            // Only the last `max` matter.
            while times.len() > k.max {
                times.pop_front();
            }
        }
        Ok(())
    }

    /// Takes back the attempt just counted on `keys` (it was not the caller's doing: the
    /// database failed, or every verification slot was busy), leaving earlier ones counted.
    pub fn forgive(&self, keys: &[Key]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            if let Some(times) = map.get_mut(&k.name) {
                times.pop_back();
            }
        }
    }

    /// Forgets the attempts of `keys` (after a successful sign-in).
    pub fn clear(&self, keys: &[Key]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            map.remove(&k.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(max_ip: u32, max_user: u32) -> Vec<Key> {
        vec![
            Key::new("ip:1.2.3.4".into(), max_ip),
            Key::new("user:bob".into(), max_user),
        ]
    }

    #[test]
    fn counts_before_the_work_and_blocks_at_the_ceiling() {
        let t = Throttle::new(Duration::from_secs(60));
        let k = keys(3, 10);
        for _ in 0..3 {
            assert!(t.attempt(&k).is_ok());
        }
        let wait = t.attempt(&k).expect_err("blocked");
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(1));
        // a refused attempt does not count: clearing after a later success is enough
        assert!(t.attempt(&[Key::new("ip:5.6.7.8".into(), 3)]).is_ok());
        // forgiving takes back one attempt only
        t.forgive(&k);
        assert!(t.attempt(&k).is_ok(), "one slot free again");
        assert!(t.attempt(&k).is_err(), "the earlier attempts still count");
        t.clear(&k);
        assert!(t.attempt(&k).is_ok());
    }

    #[test]
    fn each_key_has_its_own_ceiling() {
        let t = Throttle::new(Duration::from_secs(60));
        // bob guessed from 5 addresses: each address is under its ceiling, bob is not
        for i in 0..5 {
            let k = vec![
                Key::new(format!("ip:10.0.0.{i}"), 3),
                Key::new("user:bob".into(), 5),
            ];
            assert!(t.attempt(&k).is_ok(), "attempt {i}");
        }
        let k = vec![
            Key::new("ip:10.0.0.9".into(), 3),
            Key::new("user:bob".into(), 5),
        ];
        assert!(t.attempt(&k).is_err(), "bob's ceiling");
        assert!(
            t.attempt(&[Key::new("ip:10.0.0.9".into(), 3)]).is_ok(),
            "the address is free"
        );
    }

    #[test]
    fn window_expires() {
        let t = Throttle::new(Duration::from_millis(20));
        let k = vec![Key::new("ip:x".into(), 1)];
        assert!(t.attempt(&k).is_ok());
        assert!(t.attempt(&k).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.attempt(&k).is_ok());
    }
}
