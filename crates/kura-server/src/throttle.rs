//! Failed-authentication throttling, in memory and per process: a sliding window of failure
//! times per key (client address, user name).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Above this many tracked keys, expired ones are swept on the next failure.
const SWEEP_AT: usize = 10_000;

impl Throttle {
    pub fn new(max: u32, window: Duration) -> Throttle {
        Throttle {
            max: max.max(1) as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long until any of `keys` may try again; `None` when none is blocked.
    pub fn retry_after(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter_map(|times| {
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.window)
                    .collect();
                if recent.len() < self.max {
                    return None;
                }
                // Blocked until enough of the recent failures age out of the window.
                let unblock_at = *recent[recent.len() - self.max] + self.window;
                Some(
                    unblock_at
                        .saturating_duration_since(now)
                        .max(Duration::from_secs(1)),
                )
            })
            .max()
    }

    /// Forgets the failures of `keys` (after a successful sign-in).
    pub fn clear(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            map.remove(k);
        }
    }

    pub fn record_failure(&self, keys: &[String]) {
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
        for k in keys {
            let times = map.entry(k.clone()).or_default();
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                times.pop_front();
            }
            times.push_back(now);
            // Only the last `max` matter.
            while times.len() > self.max {
                times.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let keys = vec!["ip:1.2.3.4".to_string(), "user:bob".to_string()];
        for _ in 0..2 {
            t.record_failure(&keys);
            assert!(t.retry_after(&keys).is_none());
        }
        t.record_failure(&keys);
        let wait = t.retry_after(&keys).expect("blocked");
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(1));
        assert!(t.retry_after(&["ip:5.6.7.8".to_string()]).is_none());
        assert!(t.retry_after(&["user:bob".to_string()]).is_some());
        t.clear(&keys);
        assert!(t.retry_after(&keys).is_none());
    }

    #[test]
    fn window_expires() {
        let t = Throttle::new(1, Duration::from_millis(20));
        let k = vec!["ip:x".to_string()];
        t.record_failure(&k);
        assert!(t.retry_after(&k).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.retry_after(&k).is_none());
    }
}
