//! What the pages computed for an object id never changes: highlighted files (by blob id),
//! folders with their last commits and commit diffs (by commit id). Kept in a small LRU bounded
//! by an estimate of its bytes, per process.

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Bytes the cache may hold (an estimate: text lengths plus a per-item allowance).
const BUDGET: usize = 8 * 1024 * 1024;
/// Items larger than this are not kept (one huge diff would evict everything else).
const MAX_ITEM: usize = BUDGET / 8;

type Item = (Arc<dyn Any + Send + Sync>, usize);

/// Archives built at once (each also holds a reading slot while it streams).
pub const MAX_ARCHIVES: usize = 2;

pub struct PageCache {
    inner: Mutex<(lru::LruCache<String, Item>, usize)>,
    /// Keys being computed in the background (one computation per key).
    busy: Mutex<std::collections::HashSet<String>>,
    /// Archives being streamed.
    pub archives: Arc<tokio::sync::Semaphore>,
}

impl Default for PageCache {
    fn default() -> PageCache {
        PageCache {
            inner: Mutex::new((
                lru::LruCache::new(NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN)),
                0,
            )),
            busy: Mutex::default(),
            archives: Arc::new(tokio::sync::Semaphore::new(MAX_ARCHIVES)),
        }
    }
}

/// At most this many background computations at once (each holds a reading slot).
const MAX_BUSY: usize = 4;

impl PageCache {
    /// Claims `key` for a background computation; false if it is claimed already or too many
    /// are running.
    pub fn claim(&self, key: &str) -> bool {
        let mut b = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        b.len() < MAX_BUSY && b.insert(key.to_string())
    }

    pub fn release(&self, key: &str) {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    pub fn get<T: Send + Sync + 'static>(&self, key: &str) -> Option<Arc<T>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (v, _) = g.0.get(key)?;
        v.clone().downcast::<T>().ok()
    }

    pub fn put<T: Send + Sync + 'static>(&self, key: String, value: Arc<T>, weight: usize) {
        let weight = weight + key.len() + 64;
        if weight > MAX_ITEM {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (cache, used) = &mut *g;
        if let Some((_, old)) = cache.put(key, (value, weight)) {
            *used -= old;
        }
        *used += weight;
        while *used > BUDGET {
            match cache.pop_lru() {
                Some((_, (_, w))) => *used -= w,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_within_its_budget() {
        let c = PageCache::default();
        for i in 0..100 {
            c.put(format!("k{i}"), Arc::new(vec![0u8; 10]), MAX_ITEM - 200);
        }
        let used = c.inner.lock().map(|g| g.1).unwrap_or(usize::MAX);
        assert!(used <= BUDGET, "{used}");
        assert!(c.get::<Vec<u8>>("k99").is_some(), "the newest item is kept");
        assert!(
            c.get::<Vec<u8>>("k0").is_none(),
            "the oldest item is evicted"
        );
        assert!(c.get::<String>("k99").is_none(), "a wrong type is a miss");
        c.put("huge".into(), Arc::new(()), BUDGET);
        assert!(
            c.get::<()>("huge").is_none(),
            "an oversized item is not kept"
        );
    }
}
