//! Everything that touches a repository on disk: the hashed storage layout, creating and
//! removing repositories, spawning hardened `git` children, and the pre-receive policy that
//! enforces protected branches. It must not know about HTTP, users or the database.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod hook;
pub mod import;
pub mod maintenance;
pub mod policy;
pub mod report;
mod store;

pub use store::{GitService, RepoStore, ServiceRequest};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("git {what} failed: {stderr}")]
    Git { what: String, stderr: String },
}

pub type Result<T, E = GitError> = std::result::Result<T, E>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> GitError {
    let what = what.into();
    move |source| GitError::Io { what, source }
}
