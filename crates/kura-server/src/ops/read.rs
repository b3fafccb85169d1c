//! Reading repositories for the pages: gix (kura-view) on blocking threads, a bounded number
//! at once, with opened repositories kept for a short while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kura_db::Repo;
use kura_view::{ViewError, Viewer};
use tokio::sync::Semaphore;

use super::Ops;

/// How long an opened repository is reused (gix notices new refs and packs on its own; a
/// fresh open now and then drops memory maps of packs that maintenance replaced).
const KEEP_OPEN: Duration = Duration::from_secs(30);
const MAX_OPEN: usize = 64;

pub struct Reader {
    slots: Arc<Semaphore>,
    wait: Duration,
    open: Mutex<HashMap<(i64, i64), (Viewer, Instant)>>,
}

impl Reader {
    pub fn new(slots: usize, wait: Duration) -> Reader {
        Reader {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
            open: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("the server is busy reading repositories; try again in a moment")]
    Busy,
}

impl Ops {
    /// Runs `f` on the repository on a blocking thread, once a reading slot is free.
    pub async fn read<T, F>(&self, repo: &Repo, f: F) -> Result<T, ReadError>
    where
        T: Send + 'static,
        F: FnOnce(&Viewer) -> Result<T, ViewError> + Send + 'static,
    {
        let reader = self.reader.clone();
        let slot = tokio::time::timeout(reader.wait, reader.slots.clone().acquire_owned())
            .await
            .map_err(|_| ReadError::Busy)?
            .map_err(|_| ReadError::Busy)?;
        let key = (repo.id, repo.created_at);
        let dir = self.store.path_of(repo.id);
        let r = reader.clone();
        tokio::task::spawn_blocking(move || {
            // The slot lives as long as the work, even when the request is dropped first.
            let _slot = slot;
            let viewer = r.viewer(key, &dir)?;
            f(&viewer)
        })
        .await
        .map_err(|e| ViewError::Git(format!("reading thread failed: {e}")))?
        .map_err(ReadError::View)
    }
}

impl Ops {
    /// Drops repositories not used for a while (and so their pack mappings).
    pub fn close_idle_repositories(&self) {
        self.reader.close_idle();
    }
}

impl Reader {
    fn close_idle(&self) {
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, (_, at)| now.duration_since(*at) < KEEP_OPEN);
    }

    fn viewer(&self, key: (i64, i64), dir: &std::path::Path) -> Result<Viewer, ViewError> {
        self.close_idle();
        let now = Instant::now();
        if let Some((v, _)) = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(v.clone());
        }
        let v = Viewer::open(dir)?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        open.insert(key, (v.clone(), now));
        Ok(v)
    }
}

pub type SharedReader = Arc<Reader>;
