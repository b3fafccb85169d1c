//! Recent successful credential checks, shared by local passwords (`passwords`) and directory
//! sign-ins (`directory`): git signs in on every request, and neither argon2 nor a directory
//! round trip should be paid each time. Keys are SHA-256 over a secret of this process and the
//! parts that must all match (user, password, ...), so a wrong or changed one never matches and
//! nothing usable is kept in memory. Entries live for `ttl`; the map is bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// At most this many entries; beyond, expired ones go, then all.
const MAX_ENTRIES: usize = 10_000;

pub struct Recent<V> {
    key: [u8; 32],
    ttl: Duration,
    map: Mutex<HashMap<[u8; 32], (V, Instant)>>,
}

pub type Slot = [u8; 32];

impl<V: Clone> Recent<V> {
    pub fn new(ttl: Duration) -> Recent<V> {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        Recent {
            key,
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The key of these parts (length-prefixed, so parts cannot run into each other).
    pub fn slot(&self, parts: &[&[u8]]) -> Slot {
        let mut h = Sha256::new();
        h.update(self.key);
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.finalize().into()
    }

    pub fn get(&self, slot: &Slot) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(slot)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    pub fn put(&self, slot: Slot, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(slot, (value, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_do_not_run_into_each_other_and_zero_ttl_keeps_nothing() {
        let r: Recent<u8> = Recent::new(Duration::from_secs(60));
        assert_ne!(r.slot(&[b"ab", b"c"]), r.slot(&[b"a", b"bc"]));
        r.put(r.slot(&[b"x"]), 1);
        assert_eq!(r.get(&r.slot(&[b"x"])), Some(1));
        assert_eq!(r.get(&r.slot(&[b"y"])), None);
        let off: Recent<u8> = Recent::new(Duration::ZERO);
        off.put(off.slot(&[b"x"]), 1);
        assert_eq!(off.get(&off.slot(&[b"x"])), None);
    }
}
