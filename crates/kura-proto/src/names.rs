//! Names of users, groups and repositories. They never become paths (directories come from
//! ids); the rules keep URLs unambiguous and names readable.

const RESERVED: [&str; 10] = [
    "api", "healthz", "readyz", "metrics", "static", "login", "logout", "settings", "new",
    "explore",
];

const RULES: &str = "names are 1-100 characters of A-Z a-z 0-9 . _ -, must not start with . or -, \
                     contain .., or end in .git";

/// `kind` is "user", "group", "namespace" or "repository", for the message.
pub fn validate(kind: &str, name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let bad = name.is_empty()
        || name.len() > 100
        || !ok_chars
        || name.starts_with('.')
        || name.starts_with('-')
        || name.contains("..")
        || name.to_ascii_lowercase().ends_with(".git");
    if bad {
        let shown: String = name.chars().take(40).collect();
        let ell = if name.chars().count() > 40 { "..." } else { "" };
        return Err(format!("invalid {kind} name {shown:?}{ell}: {RULES}"));
    }
    if kind != "repository" && RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{name:?} is reserved and cannot be a {kind} name; choose another"
        ));
    }
    Ok(())
}

/// A validated `NAMESPACE/NAME` of a repository: what every operation on a repository takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPath {
    pub namespace: String,
    pub name: String,
}

impl RepoPath {
    /// From the two parts of a URL; a trailing `.git` on the name is dropped.
    pub fn new(namespace: &str, name: &str) -> Result<RepoPath, String> {
        // Names are case-insensitive, the `.git` suffix too.
        let name = match name.len().checked_sub(4) {
            Some(i) if name.is_char_boundary(i) && name[i..].eq_ignore_ascii_case(".git") => {
                &name[..i]
            }
            _ => name,
        };
        validate("namespace", namespace)?;
        validate("repository", name)?;
        Ok(RepoPath {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl std::str::FromStr for RepoPath {
    type Err = String;
    fn from_str(full: &str) -> Result<RepoPath, String> {
        let (namespace, name) = split_full(full)?;
        Ok(RepoPath { namespace, name })
    }
}

impl std::fmt::Display for RepoPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Splits `NS/NAME` (a trailing `.git` is accepted and dropped) and validates both parts.
pub fn split_full(full: &str) -> Result<(String, String), String> {
    let full = full.trim().trim_matches('/');
    let Some((ns, name)) = full.split_once('/') else {
        return Err(format!(
            "{full:?} is not a repository name: write it as NAMESPACE/NAME, e.g. team/app"
        ));
    };
    let p = RepoPath::new(ns, name)?;
    Ok((p.namespace, p.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for n in ["app", "my-app", "App_2.0", "a", &"x".repeat(100)] {
            assert!(validate("repository", n).is_ok(), "{n}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        for n in [
            "",
            ".hidden",
            "-flag",
            "a..b",
            "..",
            "a/b",
            "a b",
            "a%2f",
            "x.git",
            "ümlaut",
            &"x".repeat(101),
            "a\0b",
        ] {
            let e = validate("repository", n).unwrap_err();
            assert!(e.contains("invalid repository name"), "{e}");
        }
        assert!(validate("user", "api").unwrap_err().contains("reserved"));
        assert!(validate("repository", "api").is_ok());
    }

    #[test]
    fn repo_paths_from_urls() {
        for url_name in ["app", "app.git", "app.GIT", "App.Git"] {
            let p = RepoPath::new("team", url_name).unwrap();
            assert!(p.name.eq_ignore_ascii_case("app"), "{url_name}: {p}");
        }
        assert!(RepoPath::new("team", ".git").is_err());
        assert!(RepoPath::new("team", "é.git").is_err());
    }

    #[test]
    fn splits_full_names() {
        assert_eq!(
            split_full("team/app.git").unwrap(),
            ("team".to_string(), "app".to_string())
        );
        assert!(split_full("app").is_err());
        assert!(split_full("a/b/c").is_err());
        assert!(split_full("../etc").is_err());
        assert_eq!(split_full("team/App.GIT").unwrap().1, "App");
    }
}
