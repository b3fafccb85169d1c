//! What an operation can refuse or fail with. Messages say what happened in words any front end
//! can show; each front end adds its own advice (the CLI names commands and flags, the API a
//! stable `code`).

use kura_db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("no user named {0:?}")]
    UserNotFound(String),
    #[error("no group named {0:?}")]
    GroupNotFound(String),
    #[error("{0} is a user, not a group: members can only be added to groups")]
    NotAGroup(String),
    #[error("no user or group named {0:?}")]
    NamespaceNotFound(String),
    #[error("no repository {0}")]
    RepoNotFound(String),
    #[error("no token with id {0}")]
    TokenNotFound(i64),
    #[error("{user} is not a member of {group}")]
    NotAMember { user: String, group: String },
    #[error("{user} has no grant on {repo} (roles that come from a group are changed through the group's membership)")]
    NoGrant { user: String, repo: String },
    #[error("{repo} has no protection for {pattern:?}")]
    NoProtection { repo: String, pattern: String },
    #[error("{repo} has no mirror {which:?}")]
    MirrorNotFound { repo: String, which: String },
    #[error("{0} has no mirror")]
    NoMirror(String),
    #[error("{repo} has {count} mirrors: name one by id or URL")]
    AmbiguousMirror { repo: String, count: usize },
    #[error("no trigger {0}")]
    TriggerNotFound(String),
    #[error("no delivery {0}")]
    DeliveryNotFound(i64),
    /// A name, branch, pattern, glob or URL that breaks the rules; the text says which rule.
    #[error("{0}")]
    Invalid(String),
    #[error("the password is too short: use at least 8 characters")]
    WeakPassword,
    #[error("a token's lifetime must be longer than 0s and at most 3650d (ten years)")]
    InvalidExpiry,
    #[error("{0} already exists; choose another name")]
    Conflict(String),
    #[error("{0} is being maintained by another process right now; try again later")]
    Busy(String),
    #[error("the database failed ({0}); check that it is reachable and try again")]
    Database(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Internal(String),
    /// The directory did not answer (in time); the detail names each URL and why.
    #[error("the company directory does not answer ({0}); try again in a minute")]
    DirectoryUnavailable(String),
    /// The `[ldap]` settings do not work with this directory (the service account is refused,
    /// the filter matches several entries...).
    #[error("sign-in through the company directory is misconfigured ({0}); an administrator can run `kura ldap test LOGIN` to see which step fails")]
    DirectoryMisconfigured(String),
    #[error("{0} is a local Kura user and also a user in the company directory: Kura does not merge them; rename or delete the local user, or sign in with the local password")]
    DirectoryClash(String),
    #[error("{0} comes from the company directory: change the password (or disable the user) in the directory")]
    ManagedByDirectory(String),
    /// An import's source refused, could not be reached, or held something Kura cannot take.
    #[error("{0}")]
    ImportFailed(String),
}

/// The broad class of an error, for status codes and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Invalid,
    Conflict,
    Busy,
    Unavailable,
    /// The company directory is down or misconfigured (503, try again).
    DirectoryDown,
    Internal,
}

impl OpsError {
    pub fn kind(&self) -> ErrorKind {
        use OpsError::*;
        match self {
            UserNotFound(_)
            | GroupNotFound(_)
            | NamespaceNotFound(_)
            | RepoNotFound(_)
            | TokenNotFound(_)
            | NotAMember { .. }
            | NoGrant { .. }
            | NoProtection { .. }
            | MirrorNotFound { .. }
            | NoMirror(_)
            | TriggerNotFound(_)
            | DeliveryNotFound(_) => ErrorKind::NotFound,
            NotAGroup(_)
            | AmbiguousMirror { .. }
            | Invalid(_)
            | WeakPassword
            | InvalidExpiry
            | ManagedByDirectory(_)
            | ImportFailed(_) => ErrorKind::Invalid,
            Conflict(_) | DirectoryClash(_) => ErrorKind::Conflict,
            DirectoryUnavailable(_) | DirectoryMisconfigured(_) => ErrorKind::DirectoryDown,
            Busy(_) => ErrorKind::Busy,
            Database(_) => ErrorKind::Unavailable,
            Storage(_) | Internal(_) => ErrorKind::Internal,
        }
    }

    /// A stable identifier for programs (the API's `code`).
    pub fn code(&self) -> &'static str {
        use OpsError::*;
        match self {
            UserNotFound(_) => "user_not_found",
            GroupNotFound(_) => "group_not_found",
            NotAGroup(_) => "not_a_group",
            NamespaceNotFound(_) => "namespace_not_found",
            RepoNotFound(_) => "repo_not_found",
            TokenNotFound(_) => "token_not_found",
            NotAMember { .. } => "not_a_member",
            NoGrant { .. } => "no_grant",
            NoProtection { .. } => "no_protection",
            MirrorNotFound { .. } | NoMirror(_) => "mirror_not_found",
            AmbiguousMirror { .. } => "mirror_ambiguous",
            TriggerNotFound(_) => "trigger_not_found",
            DeliveryNotFound(_) => "delivery_not_found",
            Invalid(_) => "invalid",
            WeakPassword => "weak_password",
            InvalidExpiry => "invalid_expiry",
            Conflict(_) => "conflict",
            Busy(_) => "busy",
            Database(_) => "database_unavailable",
            Storage(_) => "storage_error",
            Internal(_) => "internal",
            DirectoryUnavailable(_) => "directory_unavailable",
            DirectoryMisconfigured(_) => "directory_misconfigured",
            DirectoryClash(_) => "directory_clash",
            ManagedByDirectory(_) => "managed_by_directory",
            ImportFailed(_) => "import_failed",
        }
    }
}

impl From<DbError> for OpsError {
    fn from(e: DbError) -> OpsError {
        match e {
            DbError::Conflict(what) => OpsError::Conflict(what),
            other => OpsError::Database(other.to_string()),
        }
    }
}

impl From<kura_git::GitError> for OpsError {
    fn from(e: kura_git::GitError) -> OpsError {
        OpsError::Storage(e.to_string())
    }
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;
