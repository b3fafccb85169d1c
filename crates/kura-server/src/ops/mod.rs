//! The operations layer: every change of state, for the CLI and the API alike. It takes typed
//! arguments (`RepoPath`, `Role`, durations), returns typed errors (`OpsError`), and is the only
//! code that reaches the database, the repository store and the delivery worker: those are
//! private to this module. Split by domain: users and tokens, groups, repositories and
//! permissions, the push log, mirrors, maintenance, and git processes.

mod check;
mod directory;
mod error;
mod git;
mod groups;
mod import;
mod maintenance;
mod mirrors;
mod pushes;
mod read;
mod replicas;
mod repos;
mod sessions;
mod triggers;
mod users;

use kura_db::Db;
use kura_git::RepoStore;
use kura_mirror::trigger::TriggerWorker;
use kura_mirror::Worker;

pub use check::StorageCheck;
pub use directory::{DirectoryLink, SyncReport};
pub use error::{ErrorKind, OpsError, Result};
pub use import::{ImportRequest, Imported};
pub use maintenance::{Maintained, RepoReport};
pub use mirrors::{DeliveryStatus, MirrorRequest};
pub use read::{ReadError, Reader};
pub use replicas::REPLICA_DEAD_AFTER_MS;
pub use sessions::NewSession;
pub use triggers::{TriggerInfo, TriggerRequest, TriggerScope};
pub use users::verify_password;

#[derive(Clone)]
pub struct Ops {
    db: Db,
    store: RepoStore,
    worker: Worker,
    triggers: TriggerWorker,
    reader: read::SharedReader,
    /// The company directory, when `[ldap]` is configured.
    directory: Option<std::sync::Arc<DirectoryLink>>,
}

impl Ops {
    pub fn new(db: Db, store: RepoStore, worker: Worker, triggers: TriggerWorker) -> Ops {
        // Reading for the pages is CPU work: a few per core, and a short wait beyond that.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let reader =
            std::sync::Arc::new(Reader::new(cores * 2, std::time::Duration::from_secs(10)));
        Ops {
            db,
            store,
            worker,
            triggers,
            reader,
            directory: None,
        }
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Why the server cannot serve right now, if it cannot (for `/readyz`).
    pub async fn unready(&self) -> Option<&'static str> {
        if let Err(e) = self.db.ping().await {
            tracing::warn!(error = %e, "not ready: database");
            return Some("the database does not answer");
        }
        if let Err(e) = self.store.check_writable().await {
            tracing::warn!(error = %e, "not ready: storage");
            return Some("the repository folder is not writable");
        }
        None
    }

    /// Starts the delivery workers of this process (mirror runs, then trigger deliveries).
    pub fn spawn_worker(&self) -> Vec<tokio::task::JoinHandle<()>> {
        vec![self.worker.spawn(), self.triggers.spawn()]
    }
}
