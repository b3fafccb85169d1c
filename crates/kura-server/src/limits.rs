//! Bounded git work: at most `git_max_processes` git children per server and
//! `git_max_processes_per_repo` per repository (clone fan-out from CI queues briefly, then gets
//! `503` + `Retry-After`), and a supervisor per child that kills it when neither side moved a
//! byte for `git_idle_timeout`, when it ran longer than `git_max_duration`, or when the client
//! went away. What the request holds (a repository's push lock) is released when git exits.

use std::collections::HashMap;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

pub struct GitSlots {
    all: Arc<Semaphore>,
    per_repo: usize,
    repos: Mutex<HashMap<i64, Arc<Semaphore>>>,
    wait: Duration,
}

/// Both permits of one git child.
pub struct GitPermit {
    _all: OwnedSemaphorePermit,
    _repo: OwnedSemaphorePermit,
}

impl GitSlots {
    pub fn new(max: usize, per_repo: usize, wait: Duration) -> GitSlots {
        GitSlots {
            all: Arc::new(Semaphore::new(max.max(1))),
            per_repo: per_repo.max(1),
            repos: Mutex::new(HashMap::new()),
            wait,
        }
    }

    /// Waits up to the queue time for a slot of the repository and one of the server.
    pub async fn acquire(&self, repo_id: i64) -> Option<GitPermit> {
        let repo = {
            let mut map = self.repos.lock().unwrap_or_else(|p| p.into_inner());
            // Forget repositories nobody holds a slot of, so the map stays small.
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.per_repo);
            map.entry(repo_id)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_repo)))
                .clone()
        };
        let deadline = tokio::time::Instant::now() + self.wait;
        let repo = tokio::time::timeout_at(deadline, repo.acquire_owned())
            .await
            .ok()?
            .ok()?;
        let all = tokio::time::timeout_at(deadline, self.all.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(GitPermit {
            _all: all,
            _repo: repo,
        })
    }
}

/// When the request last moved a byte (milliseconds since it started), shared by the body
/// copier, the output stream and the supervisor.
#[derive(Clone)]
pub struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Default for Activity {
    fn default() -> Activity {
        Activity::new()
    }
}

impl Activity {
    pub fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Why the supervisor ended a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited,
    Idle,
    TooLong,
    ClientGone,
}

pub struct Supervision {
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub activity: Activity,
    /// Held until git exits: slots, the push lock, the hook session.
    pub hold: Box<dyn std::any::Any + Send>,
}

/// Watches `child` until it exits, killing it on a timeout or when `client_gone` fires (or
/// is dropped). Sends how it ended and the exit status.
pub fn supervise(
    mut child: Child,
    s: Supervision,
    mut client_gone: oneshot::Receiver<()>,
) -> oneshot::Receiver<(Ended, std::io::Result<ExitStatus>)> {
    let (tx, rx) = oneshot::channel();
    let span = tracing::Span::current();
    let task = async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let ended = loop {
            tokio::select! {
                status = child.wait() => break (Ended::Exited, status),
                _ = &mut client_gone => {
                    let _ = child.start_kill();
                    break (Ended::ClientGone, child.wait().await);
                }
                _ = tick.tick() => {
                    let why = if !s.idle_timeout.is_zero() && s.activity.idle() >= s.idle_timeout {
                        Some(Ended::Idle)
                    } else if !s.max_duration.is_zero() && started.elapsed() >= s.max_duration {
                        Some(Ended::TooLong)
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        tracing::warn!(reason = ?why, "git request stopped: {}", match why {
                            Ended::Idle => "no data in either direction for the idle timeout",
                            _ => "it ran longer than the time limit",
                        });
                        let _ = child.start_kill();
                        break (why, child.wait().await);
                    }
                }
            }
        };
        drop(s.hold);
        let _ = tx.send(ended);
    };
    tokio::spawn(tracing::Instrument::instrument(task, span));
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_bounded_per_repository_and_in_all() {
        let slots = GitSlots::new(3, 2, Duration::from_millis(50));
        let a1 = slots.acquire(1).await.expect("a1");
        let _a2 = slots.acquire(1).await.expect("a2");
        assert!(slots.acquire(1).await.is_none(), "repository 1 is full");
        let _b1 = slots.acquire(2).await.expect("b1");
        assert!(slots.acquire(3).await.is_none(), "the server is full");
        drop(a1);
        assert!(slots.acquire(1).await.is_some(), "a slot came free");
    }

    #[tokio::test]
    async fn idle_children_are_killed_and_the_hold_released() {
        let child = tokio::process::Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let held = Arc::new(());
        let (_gone_tx, gone_rx) = oneshot::channel();
        let rx = supervise(
            child,
            Supervision {
                idle_timeout: Duration::from_millis(300),
                max_duration: Duration::ZERO,
                activity: Activity::new(),
                hold: Box::new(held.clone()),
            },
            gone_rx,
        );
        let (why, status) = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(why, Ended::Idle);
        assert!(!status.unwrap().success());
        assert_eq!(Arc::strong_count(&held), 1, "the hold was released");
    }

    #[tokio::test]
    async fn a_gone_client_kills_the_child() {
        let child = tokio::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let (gone_tx, gone_rx) = oneshot::channel::<()>();
        let rx = supervise(
            child,
            Supervision {
                idle_timeout: Duration::ZERO,
                max_duration: Duration::ZERO,
                activity: Activity::new(),
                hold: Box::new(()),
            },
            gone_rx,
        );
        drop(gone_tx);
        let (why, _) = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(why, Ended::ClientGone);
    }
}
