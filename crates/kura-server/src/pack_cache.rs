//! The pack cache for clone fan-out: the response git upload-pack gives to a clone request (see
//! `kura_proto::upload_request`) is written once to a bounded folder on local disk and served
//! from there to every identical request while the repository's refs stay the same.
//!
//! - **Key**: SHA-256 of Kura's version, the repository id, the refs' fingerprint
//!   (`kura-git::refs_state`, which includes the repository's config and so its object
//!   format), the `Git-Protocol` header and the request without the client's agent.
//! - **One producer**: the first request of a key runs git in a task of its own that writes
//!   every chunk to `tmp/` and tells the readers how far it got; that request and every
//!   identical one arriving meanwhile read the file as it grows. The task runs to git's end
//!   even when its first client goes away, so the others are not cut off.
//! - **Published only when right**: git exited 0, the refs' fingerprint after the run equals
//!   the one of the key, and the pack fits the size limit; then the file is renamed into
//!   `packs/`. Otherwise the readers still get the (valid) response and the file is dropped.
//! - **Bounded**: at most `pack_cache_size` bytes of published packs; the least recently used go
//!   first. A repository whose packs are larger than the limit, or larger than half the free
//!   space of the folder, is not cached at all. Readers hold their file open, so evicting
//!   under them is safe. The folder is emptied at start and locked (`flock`) by one process.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use lru::LruCache;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub type Key = [u8; 32];

/// How far the producer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Writing(u64),
    Done(u64),
    Failed,
}

/// What a clone request finds.
pub enum Lookup {
    /// A published pack: stream it.
    Hit(Reader),
    /// Someone is producing it: stream what they write.
    Follow(Reader),
    /// Nobody is: produce it (and read it like the others).
    Produce(Producer),
    /// Not to be cached (too large, not enough room).
    Bypass(&'static str),
}

pub struct PackCache {
    dir: PathBuf,
    limit: u64,
    _lock: File,
    inner: Mutex<Inner>,
}

struct Inner {
    ready: LruCache<Key, Ready>,
    producing: HashMap<Key, watch::Receiver<Progress>>,
    bytes: u64,
    evictions: u64,
}

struct Ready {
    path: PathBuf,
    size: u64,
}

/// Shown in `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    pub bytes: u64,
    pub entries: u64,
    pub evictions: u64,
}

impl PackCache {
    /// `None` when the size is 0 (off). Refuses a folder another process holds.
    pub fn open(dir: &Path, limit: u64) -> Result<Option<Arc<PackCache>>, String> {
        if limit == 0 {
            return Ok(None);
        }
        let say = |what: &str, e: io::Error| {
            format!(
                "pack cache folder {}: cannot {what}: {e}; set pack_cache_dir to a writable local folder, or pack_cache_size = \"0\" to run without the cache",
                dir.display()
            )
        };
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| say("create it", e))?;
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| say("open its lock file", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "pack cache folder {} is in use by another Kura process on this machine: give each its own pack_cache_dir",
                    dir.display()
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(say("lock it", e)),
        }
        // What a previous run left is dropped: its keys may name refs states of the past.
        for sub in ["packs", "tmp"] {
            let p = dir.join(sub);
            match std::fs::remove_dir_all(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(say(&format!("empty {}", p.display()), e)),
            }
            std::fs::create_dir(&p).map_err(|e| say(&format!("create {}", p.display()), e))?;
        }
        Ok(Some(Arc::new(PackCache {
            dir: dir.to_path_buf(),
            limit,
            _lock: lock,
            inner: Mutex::new(Inner {
                ready: LruCache::unbounded(),
                producing: HashMap::new(),
                bytes: 0,
                evictions: 0,
            }),
        })))
    }

    pub fn key(repo_id: i64, refs: &[u8; 32], protocol: Option<&str>, request: &[u8]) -> Key {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update([0]);
        h.update(repo_id.to_le_bytes());
        h.update(refs);
        h.update(protocol.unwrap_or("").as_bytes());
        h.update([0]);
        h.update(request);
        h.finalize().into()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.inner();
        CacheStats {
            bytes: inner.bytes,
            entries: inner.ready.len() as u64,
            evictions: inner.evictions,
        }
    }

    /// `expected` is about the size of the pack (the repository's packs).
    pub fn lookup(self: &Arc<Self>, key: Key, expected: u64) -> Lookup {
        let mut inner = self.inner();
        if let Some(r) = inner.ready.get(&key) {
            match File::open(&r.path) {
                Ok(f) => {
                    let size = r.size;
                    let (_tx, rx) = watch::channel(Progress::Done(size));
                    return Lookup::Hit(Reader::new(f, rx));
                }
                Err(e) => {
                    tracing::warn!(path = %r.path.display(), error = %e, "pack cache: a published pack cannot be opened; producing it again");
                    if let Some(r) = inner.ready.pop(&key) {
                        inner.bytes -= r.size;
                    }
                }
            }
        }
        if let Some(rx) = inner.producing.get(&key) {
            if let Ok(f) = File::open(self.tmp_path(&key)) {
                return Lookup::Follow(Reader::new(f, rx.clone()));
            }
        }
        if expected > self.limit {
            return Lookup::Bypass("the repository is larger than pack_cache_size");
        }
        if free_space(&self.dir).is_some_and(|free| free / 2 < expected) {
            return Lookup::Bypass("the pack cache folder's disk is nearly full");
        }
        let path = self.tmp_path(&key);
        let file = match File::create(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "pack cache: cannot create a file; serving without the cache");
                return Lookup::Bypass("the pack cache folder is not writable");
            }
        };
        let (tx, rx) = watch::channel(Progress::Writing(0));
        inner.producing.insert(key, rx);
        Lookup::Produce(Producer {
            cache: self.clone(),
            key,
            path,
            file: Some(file),
            tx,
            finished: false,
        })
    }

    fn tmp_path(&self, key: &Key) -> PathBuf {
        self.dir.join("tmp").join(hex::encode(key))
    }

    /// The end of a production: publish the file, or forget it.
    fn finish(&self, key: &Key, tmp: &Path, publish: Option<u64>) {
        let mut inner = self.inner();
        inner.producing.remove(key);
        let Some(size) = publish else {
            let _ = std::fs::remove_file(tmp);
            return;
        };
        let dest = self.dir.join("packs").join(hex::encode(key));
        if let Err(e) = std::fs::rename(tmp, &dest) {
            tracing::warn!(error = %e, "pack cache: cannot publish a pack");
            let _ = std::fs::remove_file(tmp);
            return;
        }
        if let Some(old) = inner.ready.put(*key, Ready { path: dest, size }) {
            inner.bytes -= old.size;
        }
        inner.bytes += size;
        while inner.bytes > self.limit {
            let Some((_, old)) = inner.ready.pop_lru() else {
                break;
            };
            inner.bytes -= old.size;
            inner.evictions += 1;
            let _ = std::fs::remove_file(&old.path);
        }
    }
}

fn free_space(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The producer of one key: feeds git's output into the file.
pub struct Producer {
    cache: Arc<PackCache>,
    key: Key,
    path: PathBuf,
    file: Option<File>,
    tx: watch::Sender<Progress>,
    finished: bool,
}

/// Told by the caller once git has exited: did it succeed, and are the refs still as keyed?
pub type Verdict = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

impl Producer {
    /// A reader for the request that started the production.
    pub fn reader(&self) -> io::Result<Reader> {
        Ok(Reader::new(File::open(&self.path)?, self.tx.subscribe()))
    }

    /// Writes `output` to the file; `verdict` says whether the result may be published.
    pub async fn run(mut self, output: impl Stream<Item = io::Result<Bytes>>, verdict: Verdict) {
        let Some(file) = self.file.take() else {
            return;
        };
        let mut file = tokio::fs::File::from_std(file);
        let mut written = 0u64;
        let mut output = std::pin::pin!(output);
        while let Some(chunk) = output.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!(error = %e, "pack cache: git's output ended with an error");
                    return self.fail();
                }
            };
            let wrote = async {
                file.write_all(&chunk).await?;
                file.flush().await
            }
            .await;
            if let Err(e) = wrote {
                tracing::error!(path = %self.path.display(), error = %e, "pack cache: cannot write; the clones reading this pack fail (free space in pack_cache_dir, or set pack_cache_size = \"0\")");
                return self.fail();
            }
            written += chunk.len() as u64;
            self.tx.send_replace(Progress::Writing(written));
        }
        if !verdict.await {
            return self.fail();
        }
        self.tx.send_replace(Progress::Done(written));
        let publish = (written <= self.cache.limit).then_some(written);
        self.cache.finish(&self.key, &self.path, publish);
        self.finished = true;
    }

    fn fail(&mut self) {
        self.tx.send_replace(Progress::Failed);
        self.cache.finish(&self.key, &self.path, None);
        self.finished = true;
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Dropped before or while running (git could not start, the task was cancelled):
        // nobody waits in vain, and the key is free again.
        if !self.finished {
            self.fail();
        }
    }
}

/// One reader of a cache file, published or being written.
pub struct Reader {
    file: File,
    progress: watch::Receiver<Progress>,
}

impl Reader {
    fn new(file: File, progress: watch::Receiver<Progress>) -> Reader {
        Reader { file, progress }
    }

    /// The file as a body: up to what the producer has written, waiting for more until it is
    /// done; an error if it failed (the client then sees a broken response, as from git).
    pub fn stream(self) -> impl Stream<Item = io::Result<Bytes>> {
        // Below glibc's mmap threshold (see main.rs): chunks come from the heap, not from mmap.
        const CHUNK: u64 = 64 * 1024;
        let file = tokio::fs::File::from_std(self.file);
        futures_util::stream::unfold(
            (file, self.progress, 0u64, false),
            |(mut file, mut rx, offset, ended)| async move {
                if ended {
                    return None;
                }
                loop {
                    let p = *rx.borrow_and_update();
                    let available = match p {
                        Progress::Writing(n) | Progress::Done(n) => n,
                        Progress::Failed => {
                            let e =
                                io::Error::other("the pack being produced for this clone failed");
                            return Some((Err(e), (file, rx, offset, true)));
                        }
                    };
                    if offset < available {
                        let want = (available - offset).min(CHUNK) as usize;
                        let mut buf = vec![0u8; want];
                        return match file.read(&mut buf).await {
                            Ok(0) => {
                                let e =
                                    io::Error::other("a pack cache file is shorter than written");
                                Some((Err(e), (file, rx, offset, true)))
                            }
                            Ok(n) => {
                                buf.truncate(n);
                                Some((Ok(Bytes::from(buf)), (file, rx, offset + n as u64, false)))
                            }
                            Err(e) => Some((Err(e), (file, rx, offset, true))),
                        };
                    }
                    if matches!(p, Progress::Done(_)) {
                        return None;
                    }
                    if rx.changed().await.is_err() && !matches!(*rx.borrow(), Progress::Done(_)) {
                        let e = io::Error::other(
                            "the pack being produced for this clone was abandoned",
                        );
                        return Some((Err(e), (file, rx, offset, true)));
                    }
                }
            },
        )
    }
}
