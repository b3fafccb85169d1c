//! The one delivery machinery, generic over what is delivered: claim a due target of one kind
//! (lease), run one delivery that covers everything queued when it starts (coalescing), renew
//! the lease while it runs and stop when it may be lost, record the outcome, retry failures
//! with capped exponential backoff and jitter. Mirrors are the first kind (`crate::worker`);
//! push triggers are the second (`crate::trigger`).

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kura_db::{Db, RunRecord, RunSuccess, TargetKind};
use rand::Rng;
use tokio::sync::{watch, Notify, Semaphore};
use tracing::Instrument;

use crate::sanitize::sanitize;

/// One kind of delivery target and how to deliver to it.
pub trait Deliver: Send + Sync + 'static {
    type Target: Send + Sync + 'static;
    type Outcome: Send + Sync + 'static;
    type Error: Display + Send + Sync + 'static;

    const KIND: TargetKind;

    /// Whether a successful run delivered everything queued when it was claimed (a mirror
    /// pushes the whole state). `false`: `deliver` marks each delivery itself, and one whose
    /// id is below the run's highest but that committed after the claim (PostgreSQL takes ids
    /// at insert, not at commit) stays pending for the next run.
    const COVERS_QUEUE: bool = true;

    /// Loads a claimed target (`None`: removed meanwhile).
    fn load(
        &self,
        db: &Db,
        id: i64,
    ) -> impl Future<Output = kura_db::Result<Option<Self::Target>>> + Send;

    /// Brings the target up to date with everything queued for it, up to delivery `covers`.
    fn deliver(
        &self,
        target: &Self::Target,
        covers: i64,
    ) -> impl Future<Output = Result<Self::Outcome, Self::Error>> + Send;

    /// The error of a run stopped because its lease may have passed to another process.
    fn lease_lost(&self) -> Self::Error;

    /// A span naming the target in every log line of its run.
    fn span(&self, target: &Self::Target) -> tracing::Span;

    /// Failed attempts so far (for the backoff).
    fn attempts(&self, target: &Self::Target) -> i64;

    /// What to record of a success.
    fn success<'a>(&self, outcome: &'a Self::Outcome) -> RunSuccess<'a>;

    /// Queues work a crash may have left unqueued; run at start and every few minutes.
    fn reconcile(&self, _db: &Db) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How the engine schedules work.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// This process's identity in leases.
    pub owner: String,
    pub lease: Duration,
    pub retry_max: Duration,
    /// How often to look for work queued by other processes or due for retry.
    pub poll: Duration,
    pub concurrency: usize,
}

const RECONCILE_EVERY: Duration = Duration::from_secs(300);

pub struct Engine<D: Deliver> {
    inner: Arc<Inner<D>>,
}

impl<D: Deliver> Clone for Engine<D> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<D> {
    db: Db,
    kind: D,
    settings: EngineSettings,
    notify: Notify,
    finished: watch::Sender<u64>,
    slots: Arc<Semaphore>,
}

impl<D: Deliver> Engine<D> {
    pub fn new(db: Db, kind: D, settings: EngineSettings) -> Engine<D> {
        let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        Engine {
            inner: Arc::new(Inner {
                db,
                kind,
                settings,
                notify: Notify::new(),
                finished: watch::channel(0).0,
                slots,
            }),
        }
    }

    pub fn kind(&self) -> &D {
        &self.inner.kind
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// Look for work now (after a push or a sync request).
    pub fn kick(&self) {
        self.inner.notify.notify_one();
    }

    /// Changes after every finished run in this process.
    pub fn finished(&self) -> watch::Receiver<u64> {
        self.inner.finished.subscribe()
    }

    /// Runs forever: claim and run whatever is due, then sleep until kicked or the poll period.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            me.inner.kind.reconcile(&me.inner.db).await;
            let mut last_reconcile = Instant::now();
            loop {
                // Also now and then: a push whose recording failed must not wait for the next.
                if last_reconcile.elapsed() >= RECONCILE_EVERY {
                    me.inner.kind.reconcile(&me.inner.db).await;
                    last_reconcile = Instant::now();
                }
                loop {
                    let Ok(permit) = me.inner.slots.clone().acquire_owned().await else {
                        return;
                    };
                    match me.claim(None).await {
                        Some((t, id, max_job)) => {
                            let w = me.clone();
                            tokio::spawn(async move {
                                let _ = w.run_claimed(t, id, max_job).await;
                                drop(permit);
                            });
                        }
                        None => break,
                    }
                }
                tokio::select! {
                    _ = me.inner.notify.notified() => {}
                    _ = tokio::time::sleep(me.inner.settings.poll) => {}
                }
            }
        })
    }

    async fn claim(&self, only: Option<i64>) -> Option<(D::Target, i64, i64)> {
        let s = &self.inner.settings;
        let lease = s.lease.as_secs().max(5) as i64;
        let claimed = self
            .inner
            .db
            .claim_delivery(D::KIND, &s.owner, lease, only)
            .await;
        let (id, max_job) = match claimed {
            Ok(Some(c)) => c,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, kind = D::KIND.as_str(), "cannot claim delivery work");
                return None;
            }
        };
        match self.inner.kind.load(&self.inner.db, id).await {
            Ok(Some(t)) => Some((t, id, max_job)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the claimed delivery target");
                None
            }
        }
    }

    /// Claims and runs target `id` now if it has pending work and no other run holds it.
    /// `None`: nothing to do here (another process is running it, or nothing is pending).
    pub async fn run_now(&self, id: i64) -> Option<Result<D::Outcome, D::Error>> {
        let (t, id, max_job) = self.claim(Some(id)).await?;
        Some(self.run_claimed(t, id, max_job).await)
    }

    async fn run_claimed(
        &self,
        target: D::Target,
        id: i64,
        max_job: i64,
    ) -> Result<D::Outcome, D::Error> {
        let span = self.inner.kind.span(&target);
        async {
            let started = Instant::now();
            tracing::info!(covers_job = max_job, "delivery run started");
            let result = tokio::select! {
                r = self.inner.kind.deliver(&target, max_job) => r,
                _ = self.lease_lost(id) => Err(self.inner.kind.lease_lost()),
            };
            self.record(&target, id, max_job, started, &result).await;
            self.inner.finished.send_modify(|g| *g += 1);
            result
        }
        .instrument(span)
        .await
    }

    /// Renews the lease every sixth of its length. Resolves when another process owns it, or
    /// when renewals have failed for long enough that it may have expired: the run must stop
    /// (its child processes are killed) before another process can take over.
    async fn lease_lost(&self, id: i64) {
        let s = &self.inner.settings;
        let lease = s.lease.max(Duration::from_secs(5));
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(lease / 6).await;
            match self
                .inner
                .db
                .renew_lease(id, &s.owner, lease.as_secs() as i64)
                .await
            {
                Ok(true) => last_ok = Instant::now(),
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the delivery lease");
                    if last_ok.elapsed() >= lease * 2 / 3 {
                        return;
                    }
                }
            }
        }
    }

    async fn record(
        &self,
        target: &D::Target,
        id: i64,
        max_job: i64,
        started: Instant,
        result: &Result<D::Outcome, D::Error>,
    ) {
        let duration_ms = started.elapsed().as_millis() as i64;
        let err_text;
        let rec = match result {
            Ok(o) => {
                let success = self.inner.kind.success(o);
                tracing::info!(duration_ms, summary = %success.summary, verified = success.verified, "delivery run succeeded");
                RunRecord {
                    max_job,
                    covers_queue: D::COVERS_QUEUE,
                    duration_ms,
                    result: Ok(success),
                    retry_at: 0,
                }
            }
            Err(e) => {
                // Errors may quote URLs or keys: never store or log them raw.
                err_text = sanitize(e);
                let jitter = rand::thread_rng().gen_range(0.5..=1.0);
                let delay = backoff(
                    self.inner.kind.attempts(target) + 1,
                    self.inner.settings.retry_max,
                    jitter,
                );
                tracing::warn!(duration_ms, error = %err_text, retry_in_s = delay.as_secs(), "delivery run failed");
                RunRecord {
                    max_job,
                    covers_queue: D::COVERS_QUEUE,
                    duration_ms,
                    result: Err(&err_text),
                    retry_at: kura_db::now() + delay.as_secs() as i64,
                }
            }
        };
        if let Err(e) = self
            .inner
            .db
            .finish_delivery(id, &self.inner.settings.owner, &rec)
            .await
        {
            // The lease expires on its own and the deliveries stay pending: nothing is lost.
            tracing::error!(error = %e, "cannot record the delivery run");
        }
    }
}

/// 2 s, 4 s, 8 s ... capped at `max`, scaled by `jitter` (drawn from 0.5-1.0), at least 1 s.
pub fn backoff(attempt: i64, max: Duration, jitter: f64) -> Duration {
    let max = max.as_secs_f64().max(1.0);
    let base = (2f64.powi(attempt.clamp(1, 30) as i32)).min(max);
    Duration::from_secs_f64((base * jitter.clamp(0.0, 1.0)).max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let max = Duration::from_secs(300);
        let secs = |a, j| backoff(a, max, j).as_secs();
        assert_eq!([1, 2, 3, 4, 8].map(|a| secs(a, 1.0)), [2, 4, 8, 16, 256]);
        assert_eq!(secs(9, 1.0), 300, "capped");
        assert_eq!(secs(1_000_000, 1.0), 300, "huge attempt counts stay capped");
        assert_eq!(secs(9, 0.5), 150, "jitter scales");
        assert_eq!(secs(1, 0.5), 1, "never below a second");
        assert_eq!(secs(0, 1.0), 2, "attempt counts start at 1");
        assert_eq!(
            backoff(5, Duration::ZERO, 1.0).as_secs(),
            1,
            "a zero cap still waits a second"
        );
    }
}
