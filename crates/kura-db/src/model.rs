use std::fmt;
use std::str::FromStr;

/// What a user may do on a repository; ordered so that `max` gives the strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}: use read, write or admin")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    User,
    Group,
}

#[derive(Debug, Clone)]
pub struct Namespace {
    pub id: i64,
    pub name: String,
    pub kind: NamespaceKind,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub namespace_id: i64,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
    /// Disabled by an administrator or by the directory: either way no way in works.
    pub disabled: bool,
    pub created_at: i64,
    /// Set for users that come from the company directory (no local password).
    pub directory: Option<DirectoryFacts>,
}

impl User {
    /// Where the user comes from, as `kura user list` prints it.
    pub fn source(&self) -> &'static str {
        if self.directory.is_some() {
            "directory"
        } else {
            "local"
        }
    }
}

/// What Kura copied from the directory entry of a user, at `synced_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryFacts {
    pub dn: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Disabled or no longer found in the directory.
    pub disabled: bool,
    pub synced_at: i64,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub id: i64,
    pub namespace_id: i64,
    pub namespace: String,
    pub name: String,
    pub is_public: bool,
    pub default_branch: String,
    pub created_at: i64,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Token {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scope: Role,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

/// A protected-branch rule: a glob over branch names and who may push (empty: repo admins).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Protection {
    pub pattern: String,
    pub allow_push: Vec<String>,
}

pub(crate) fn role(s: &str) -> Role {
    // The schema's CHECK constraints admit only the three names.
    Role::from_str(s).unwrap_or(Role::Read)
}
