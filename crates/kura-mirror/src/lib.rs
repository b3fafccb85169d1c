//! Delivery after a push: the generic delivery machinery (`delivery`: claim with a lease,
//! renew, retry with backoff, record), push triggers (`trigger`: webhooks, EventBridge,
//! CodePipeline) as its second kind, and push mirrors as its first kind: parsing targets,
//! encrypting remote credentials, and the run that plans and pushes the repository's current heads and tags with `git push`,
//! verifies the remote with `git ls-remote`, and records the result or schedules a retry.
//! Failures are `MirrorError`s; their text goes through `sanitize` before it is stored or
//! shown. It must not know about HTTP or users; the server tells it when to look
//! (`Worker::kick`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod delivery;
mod error;
mod plan;
mod run;
mod sanitize;
mod secret;
mod target;
pub mod trigger;
mod worker;

pub use error::MirrorError;
pub use run::RunOutcome;
pub use sanitize::sanitize;
pub use secret::SecretBox;
pub use target::{is_loopback_url, Target};
pub use worker::{MirrorSettings, RunResult, Worker};
