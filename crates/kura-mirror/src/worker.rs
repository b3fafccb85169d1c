//! The mirror worker: claims due mirrors (lease), runs them, records results, retries with
//! capped exponential backoff and jitter. One per `kura serve`; `kick` wakes it after a push.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kura_db::{Db, Mirror, RunRecord, RunSuccess};
use kura_git::RepoStore;
use rand::Rng;
use tokio::sync::{watch, Notify, Semaphore};
use tracing::Instrument;

use crate::run::{run, wanted_heads, RunOutcome};
use crate::sanitize::sanitize;
use crate::secret::SecretBox;

const RECONCILE_EVERY: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct MirrorSettings {
    /// This process's identity in leases.
    pub owner: String,
    pub lease: Duration,
    pub retry_max: Duration,
    /// Override of CodeCommit's Git endpoint (VPC endpoint, tests).
    pub codecommit_endpoint: Option<String>,
    /// The `kura` binary, for git's credential helper.
    pub exe: PathBuf,
    pub git_timeout: Duration,
    /// How often to look for work queued by other processes or due for retry.
    pub poll: Duration,
    pub concurrency: usize,
    pub secrets: SecretBox,
}

#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    store: RepoStore,
    settings: MirrorSettings,
    notify: Notify,
    finished: watch::Sender<u64>,
    slots: Arc<Semaphore>,
}

/// What a single run did, for callers that run one directly (`kura mirror sync`).
pub type RunResult = Result<RunOutcome, String>;

impl Worker {
    pub fn new(db: Db, store: RepoStore, settings: MirrorSettings) -> Worker {
        let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        Worker {
            inner: Arc::new(Inner {
                db,
                store,
                settings,
                notify: Notify::new(),
                finished: watch::channel(0).0,
                slots,
            }),
        }
    }

    pub fn settings(&self) -> &MirrorSettings {
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
            me.reconcile().await;
            let mut last_reconcile = Instant::now();
            loop {
                // Also now and then: a push whose recording failed must not wait for the next.
                if last_reconcile.elapsed() >= RECONCILE_EVERY {
                    me.reconcile().await;
                    last_reconcile = Instant::now();
                }
                loop {
                    let Ok(permit) = me.inner.slots.clone().acquire_owned().await else {
                        return;
                    };
                    match me.claim(None).await {
                        Some((m, max_job)) => {
                            let w = me.clone();
                            tokio::spawn(async move {
                                let _ = w.run_claimed(m, max_job).await;
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

    /// A process killed between a ref update and recording the push leaves a mirror behind
    /// with nothing queued: at start, queue a run for every idle mirror whose last verified
    /// remote state differs from the repository.
    async fn reconcile(&self) {
        let Ok(mirrors) = self.inner.db.mirrors(None).await else {
            return;
        };
        for m in mirrors {
            let idle = matches!(self.inner.db.pending(m.id).await, Ok(p) if p.count == 0);
            if !idle {
                continue;
            }
            let Ok(wanted) = wanted_heads(&self.inner.store, &m).await else {
                continue;
            };
            if m.remote_heads.as_deref().unwrap_or("") != wanted {
                tracing::info!(repo = %m.repo, mirror = %m.url, "mirror behind the repository; queued a run");
                let _ = self.inner.db.enqueue_sync(m.id).await;
            }
        }
    }

    async fn claim(&self, only: Option<i64>) -> Option<(Mirror, i64)> {
        let lease = self.inner.settings.lease.as_secs().max(5) as i64;
        match self
            .inner
            .db
            .claim_mirror(&self.inner.settings.owner, lease, only)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim mirror work");
                None
            }
        }
    }

    /// Claims and runs mirror `id` now if it has pending work and no other run holds it.
    /// `None`: nothing to do here (another process is running it, or nothing is pending).
    pub async fn run_now(&self, id: i64) -> Option<RunResult> {
        let (m, max_job) = self.claim(Some(id)).await?;
        Some(self.run_claimed(m, max_job).await)
    }

    async fn run_claimed(&self, m: Mirror, max_job: i64) -> RunResult {
        let span = tracing::info_span!("mirror", repo = %m.repo, mirror = %m.url, mirror_id = m.id);
        self.run_claimed_inner(m, max_job).instrument(span).await
    }

    async fn run_claimed_inner(&self, m: Mirror, max_job: i64) -> RunResult {
        let s = &self.inner.settings;
        let started = Instant::now();
        tracing::info!(covers_job = max_job, "mirror run started");
        let password = match &m.secret {
            Some(sealed) => match s.secrets.open(sealed) {
                Ok(p) => Some(p),
                Err(e) => {
                    let r = Err(e.to_string());
                    self.record(&m, max_job, started, &r).await;
                    return r;
                }
            },
            None => None,
        };
        let result = tokio::select! {
            r = run(&self.inner.store, s, &m, password) => r,
            _ = self.lease_lost(m.id) => Err("the run's lease was lost (database unreachable or the run took over another process's lease); it will run again".into()),
        };
        self.record(&m, max_job, started, &result).await;
        self.inner.finished.send_modify(|g| *g += 1);
        result
    }

    /// Renews the lease every third of its length. Resolves when another process owns it, or
    /// when renewals have failed for long enough that it may have expired: the run must stop
    /// (its git child is killed) before another process can take over.
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
                    tracing::warn!(error = %e, "cannot renew the mirror lease");
                    if last_ok.elapsed() >= lease * 2 / 3 {
                        return;
                    }
                }
            }
        }
    }

    async fn record(&self, m: &Mirror, max_job: i64, started: Instant, result: &RunResult) {
        let duration_ms = started.elapsed().as_millis() as i64;
        let err_text;
        let rec = match result {
            Ok(o) => {
                tracing::info!(duration_ms, summary = %o.summary, verified = o.verified, "mirror run succeeded");
                RunRecord {
                    max_job,
                    duration_ms,
                    result: Ok(RunSuccess {
                        summary: &o.summary,
                        verified: o.verified,
                        remote_heads: &o.remote_heads,
                    }),
                    retry_at: 0,
                }
            }
            Err(e) => {
                err_text = sanitize(e);
                let delay = self.backoff(m.attempts + 1);
                tracing::warn!(duration_ms, error = %err_text, retry_in_s = delay.as_secs(), "mirror run failed");
                RunRecord {
                    max_job,
                    duration_ms,
                    result: Err(&err_text),
                    retry_at: kura_db::now() + delay.as_secs() as i64,
                }
            }
        };
        if let Err(e) = self
            .inner
            .db
            .finish_run(m.id, &self.inner.settings.owner, &rec)
            .await
        {
            // The lease expires on its own and the jobs stay pending: nothing is lost.
            tracing::error!(error = %e, "cannot record the mirror run");
        }
    }

    /// 2 s, 4 s, 8 s ... capped at `retry_max`, each scaled by a random 50-100 %.
    fn backoff(&self, attempt: i64) -> Duration {
        let max = self.inner.settings.retry_max.as_secs_f64().max(1.0);
        let base = (2f64.powi(attempt.clamp(1, 30) as i32)).min(max);
        let jitter = rand::thread_rng().gen_range(0.5..=1.0);
        Duration::from_secs_f64((base * jitter).max(1.0))
    }
}
