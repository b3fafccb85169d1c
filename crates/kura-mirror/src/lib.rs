//! Push mirrors: parsing targets, encrypting remote credentials, and the worker that claims a
//! mirror (lease), mirrors the repository's current heads and tags with `git push`, verifies
//! the remote with `git ls-remote`, and records the result or schedules a retry. It must not
//! know about HTTP or users; the server tells it when to look (`Worker::kick`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod run;
mod sanitize;
mod secret;
mod target;
mod worker;

pub use run::RunOutcome;
pub use sanitize::sanitize;
pub use secret::SecretBox;
pub use target::Target;
pub use worker::{MirrorSettings, Worker};

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{0}")]
    Secret(String),
}
