//! The mirror worker: mirrors as a kind of delivery (`crate::delivery`), which claims due
//! mirrors (lease), runs them, records results and retries with backoff. One per `kura serve`;
//! `kick` wakes it after a push.

use std::path::PathBuf;
use std::time::Duration;

use kura_db::{Db, Mirror, RunSuccess, TargetKind};
use kura_git::RepoStore;
use tokio::sync::watch;

use crate::delivery::{Deliver, Engine, EngineSettings};
use crate::run::{run, wanted_heads, RunOutcome};
use crate::secret::SecretBox;
use crate::MirrorError;

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

/// The mirror kind of delivery: a run makes the remote equal to the repository.
pub struct MirrorDelivery {
    store: RepoStore,
    settings: MirrorSettings,
}

impl Deliver for MirrorDelivery {
    type Target = Mirror;
    type Outcome = RunOutcome;
    type Error = MirrorError;

    const KIND: TargetKind = TargetKind::Mirror;

    async fn load(&self, db: &Db, id: i64) -> kura_db::Result<Option<Mirror>> {
        db.mirror_by_id(id).await
    }

    async fn deliver(&self, m: &Mirror, _covers: i64) -> RunResult {
        let password = match &m.secret {
            Some(sealed) => Some(self.settings.secrets.open(sealed)?),
            None => None,
        };
        run(&self.store, &self.settings, m, password).await
    }

    fn lease_lost(&self) -> MirrorError {
        MirrorError::LeaseLost
    }

    fn span(&self, m: &Mirror) -> tracing::Span {
        tracing::info_span!("mirror", repo = %m.repo, mirror = %m.url, mirror_id = m.id)
    }

    fn attempts(&self, m: &Mirror) -> i64 {
        m.attempts
    }

    fn success<'a>(&self, o: &'a RunOutcome) -> RunSuccess<'a> {
        RunSuccess {
            summary: &o.summary,
            verified: o.verified,
            remote_heads: &o.remote_heads,
        }
    }

    /// A process killed between a ref update and recording the push leaves a mirror behind
    /// with nothing queued: queue a run for every idle mirror whose last verified remote state
    /// differs from the repository.
    async fn reconcile(&self, db: &Db) {
        let Ok(mirrors) = db.mirrors(None).await else {
            return;
        };
        for m in mirrors {
            let idle = matches!(db.pending(m.id).await, Ok(p) if p.count == 0);
            if !idle {
                continue;
            }
            let Ok(wanted) = wanted_heads(&self.store, &m).await else {
                continue;
            };
            if m.remote_heads.as_deref().unwrap_or("") != wanted {
                tracing::info!(repo = %m.repo, mirror = %m.url, "mirror behind the repository; queued a run");
                let _ = db.enqueue_delivery(m.id).await;
            }
        }
    }
}

/// What a single run did, for callers that run one directly (`kura mirror sync`).
pub type RunResult = Result<RunOutcome, MirrorError>;

/// The mirror worker of this process: the delivery engine with the mirror kind.
#[derive(Clone)]
pub struct Worker {
    engine: Engine<MirrorDelivery>,
}

impl Worker {
    pub fn new(db: Db, store: RepoStore, settings: MirrorSettings) -> Worker {
        let engine_settings = EngineSettings {
            owner: settings.owner.clone(),
            lease: settings.lease,
            retry_max: settings.retry_max,
            poll: settings.poll,
            concurrency: settings.concurrency,
        };
        Worker {
            engine: Engine::new(db, MirrorDelivery { store, settings }, engine_settings),
        }
    }

    pub fn settings(&self) -> &MirrorSettings {
        &self.engine.kind().settings
    }

    /// Look for work now (after a push or a sync request).
    pub fn kick(&self) {
        self.engine.kick();
    }

    /// Changes after every finished run in this process.
    pub fn finished(&self) -> watch::Receiver<u64> {
        self.engine.finished()
    }

    /// Runs forever: claim and run whatever is due, then sleep until kicked or the poll period.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        self.engine.spawn()
    }

    /// Claims and runs mirror `id` now if it has pending work and no other run holds it.
    /// `None`: nothing to do here (another process is running it, or nothing is pending).
    pub async fn run_now(&self, id: i64) -> Option<RunResult> {
        self.engine.run_now(id).await
    }
}
