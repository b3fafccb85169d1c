//! Everything that touches a repository on disk: the hashed storage layout, creating and
//! removing repositories, spawning hardened `git` children, and the pre-receive policy that
//! enforces protected branches. It must not know about HTTP, users or the database.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod check;
pub mod hook;
pub mod import;
pub mod maintenance;
pub mod policy;
mod refs_state;
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

/// A name part unique across processes and hosts. Replicas share the data folder and, as
/// containers, often run Kura under the same process id, so a pid never names a shared file.
pub fn unique_suffix() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> GitError {
    let what = what.into();
    move |source| GitError::Io { what, source }
}

/// The oldest git Kura works with: `repack --geometric --write-midx` (2.34) and
/// `fetch --atomic` (2.31).
pub const MIN_GIT: (u32, u32) = (2, 34);

/// Checks that the `git` on PATH is new enough; the error says what was found.
pub fn check_git_version() -> std::result::Result<(), String> {
    let out = std::process::Command::new("git")
        .arg("--version")
        .output()
        .map_err(|e| {
            format!(
                "cannot run git ({e}): install git {}.{} or later",
                MIN_GIT.0, MIN_GIT.1
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    match parse_git_version(&text) {
        Some(v) if v >= MIN_GIT => Ok(()),
        Some(_) | None => Err(format!(
            "{} is too old or unknown: Kura needs git {}.{} or later (Debian 12 has 2.39)",
            text.trim(),
            MIN_GIT.0,
            MIN_GIT.1
        )),
    }
}

/// `git version 2.39.5` -> (2, 39).
fn parse_git_version(text: &str) -> Option<(u32, u32)> {
    let v = text.trim().strip_prefix("git version ")?;
    let mut parts = v.split(['.', ' ']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn git_versions_parse() {
        assert_eq!(
            super::parse_git_version("git version 2.39.5\n"),
            Some((2, 39))
        );
        assert_eq!(
            super::parse_git_version("git version 2.47.3.windows.1"),
            Some((2, 47))
        );
        assert_eq!(super::parse_git_version("nonsense"), None);
        assert!(super::parse_git_version("git version 2.30.2").unwrap() < super::MIN_GIT);
    }
}
