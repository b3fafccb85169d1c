//! Why a mirror operation failed. Every message says what happened and what to do; it may
//! quote git's stderr or a URL, so pass it through `sanitize` before storing or showing it.

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The mirror URL is not one Kura can push to (the text says how to write it).
    #[error("{0}")]
    InvalidTarget(String),
    /// The server key or a stored mirror password.
    #[error("{0}")]
    Secret(String),
    /// Creating or looking up the CodeCommit repository.
    #[error(transparent)]
    Aws(#[from] kura_aws::AwsError),
    /// git could not be started at all.
    #[error("cannot run git {what}: {io}; check that git is installed and on the server's PATH")]
    Spawn { what: String, io: std::io::Error },
    #[error("git {what} did not finish within {secs}s: the remote is slow or unreachable")]
    Timeout { what: String, secs: u64 },
    /// git ran and failed; `stderr` is its message without hints.
    #[error("git {what} failed: {stderr}")]
    Git { what: String, stderr: String },
    /// The push went through but `ls-remote` shows another state (a concurrent push there).
    #[error("pushed, but the remote's refs differ from Kura's afterwards ({expected} expected, {found} found); will retry")]
    NotVerified { expected: usize, found: usize },
    #[error("the run's lease was lost (database unreachable or the run took over another process's lease); it will run again")]
    LeaseLost,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_happened_and_what_next() {
        let e = MirrorError::NotVerified {
            expected: 3,
            found: 2,
        };
        assert_eq!(
            e.to_string(),
            "pushed, but the remote's refs differ from Kura's afterwards (3 expected, 2 found); will retry"
        );
        let e = MirrorError::Git {
            what: "push".into(),
            stderr: "fatal: unable to access 'https://bob:hunter2@h/x.git/': 403".into(),
        };
        let shown = crate::sanitize(&e);
        assert!(
            shown.starts_with("git push failed: fatal: unable to access"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(MirrorError::LeaseLost
            .to_string()
            .contains("it will run again"));
    }
}
