//! Where a mirror pushes: `codecommit://REGION/REPOSITORY` or any `https://` (or `http://`) Git
//! remote.

use url::{Host, Url};

use crate::MirrorError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    CodeCommit { region: String, repository: String },
    Git { url: String },
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, MirrorError> {
        let invalid = |msg: String| Err(MirrorError::InvalidTarget(msg));
        if let Some(rest) = url.strip_prefix("codecommit://") {
            return parse_codecommit(rest).ok_or_else(|| {
                MirrorError::InvalidTarget(format!(
                    "{url:?} is not a CodeCommit target: write codecommit://REGION/REPOSITORY, e.g. codecommit://us-east-1/app"
                ))
            });
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return invalid(format!(
                "{url:?} is not a mirror target: use codecommit://REGION/REPOSITORY or https://HOST/PATH.git"
            ));
        };
        // As written, not as `url` lowercases it: callers test for a plain `http://` prefix.
        if scheme != "https" && scheme != "http" {
            return invalid(format!(
                "mirrors push over HTTPS: {scheme}:// is not supported; use codecommit:// or https://"
            ));
        }
        check_http(url, rest)?;
        Ok(Target::Git {
            url: url.to_string(),
        })
    }

    /// The URL git pushes to. CodeCommit's Git endpoint may be overridden (VPC endpoint,
    /// tests); the repository path stays `/v1/repos/NAME`.
    pub fn git_url(&self, codecommit_endpoint: Option<&str>) -> String {
        match self {
            Target::CodeCommit { region, repository } => {
                let base = match codecommit_endpoint {
                    Some(e) if !e.is_empty() => e.trim_end_matches('/').to_string(),
                    _ => format!("https://git-codecommit.{region}.amazonaws.com"),
                };
                format!("{base}/v1/repos/{repository}")
            }
            Target::Git { url } => url.clone(),
        }
    }
}

/// `REGION/REPOSITORY`; not a URL to `url` (the region sits where a host would).
fn parse_codecommit(rest: &str) -> Option<Target> {
    let (region, repo) = rest.split_once('/')?;
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    // CodeCommit repository names: letters, digits, . _ -, at most 100.
    let repo_ok = !repo.is_empty()
        && repo.len() <= 100
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !repo.ends_with(".git");
    (region_ok && repo_ok).then(|| Target::CodeCommit {
        region: region.to_string(),
        repository: repo.to_string(),
    })
}

fn no_credentials() -> MirrorError {
    MirrorError::InvalidTarget(
        "mirror URLs cannot carry credentials or be empty: give the user name with --username and the password on stdin (--password-stdin), never in the URL"
            .into(),
    )
}

/// git gets the URL as written, while `url` normalises some spellings that git reads
/// differently (`\`, blanks, an empty `@`, extra slashes): those are refused, not guessed at.
fn check_http(url: &str, after_scheme: &str) -> Result<(), MirrorError> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(MirrorError::InvalidTarget(
            "mirror URLs cannot contain spaces or control characters".into(),
        ));
    }
    if url.contains('\\') {
        return Err(MirrorError::InvalidTarget(
            "mirror URLs cannot contain backslashes: write / between path segments".into(),
        ));
    }
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(url::ParseError::EmptyHost) => return Err(no_credentials()),
        Err(e) => {
            return Err(MirrorError::InvalidTarget(format!(
                "{url:?} is not a valid URL ({e}): write https://HOST/PATH.git"
            )))
        }
    };
    let host = parsed.host_str().unwrap_or("");
    if host.is_empty() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(no_credentials());
    }
    let as_written = after_scheme
        .get(..host.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(host));
    if !as_written {
        if after_scheme.starts_with(['/', '@', ':']) {
            return Err(no_credentials());
        }
        return Err(MirrorError::InvalidTarget(format!(
            "{url:?}: write the host as {host}, the way git reads it"
        )));
    }
    Ok(())
}

/// Whether the URL's host is `localhost` or a loopback address, where a password may travel
/// over plain `http://`. False for any spelling git might read differently.
pub fn is_loopback_url(url: &str) -> bool {
    if url.contains('\\') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Ok(parsed) = Url::parse(url) else {
        return false;
    };
    match parsed.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(url: &str) -> String {
        match Target::parse(url) {
            Ok(t) => panic!("{url} parsed as {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_targets() {
        assert_eq!(
            Target::parse("codecommit://us-east-1/app").unwrap(),
            Target::CodeCommit {
                region: "us-east-1".into(),
                repository: "app".into()
            }
        );
        assert_eq!(
            Target::parse("codecommit://us-east-1/app")
                .unwrap()
                .git_url(None),
            "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/app"
        );
        assert_eq!(
            Target::parse("codecommit://eu-west-1/x")
                .unwrap()
                .git_url(Some("http://127.0.0.1:9/")),
            "http://127.0.0.1:9/v1/repos/x"
        );
        for good in [
            "https://git.example.com/team/app.git",
            "https://Git.Example.com:8443/team/app.git",
            "http://127.0.0.1:9/x.git",
            "https://[::1]/x.git",
            "https://host/path@v1/x.git",
        ] {
            assert_eq!(
                Target::parse(good).unwrap(),
                Target::Git { url: good.into() },
                "kept as written"
            );
        }
    }

    #[test]
    fn refuses_bad_targets_with_advice() {
        for (url, says) in [
            (
                "codecommit://us-east-1",
                "write codecommit://REGION/REPOSITORY",
            ),
            ("codecommit:///app", "is not a CodeCommit target"),
            ("codecommit://US/app", "is not a CodeCommit target"),
            (
                "codecommit://us-east-1/app.git",
                "is not a CodeCommit target",
            ),
            ("nothing", "use codecommit://REGION/REPOSITORY or https://"),
            ("git@github.com:team/app.git", "is not a mirror target"),
            ("ssh://host/x", "ssh:// is not supported"),
            ("file:///etc", "file:// is not supported"),
            ("HTTPS://host/x", "HTTPS:// is not supported"),
            ("https://user:pw@host/x.git", "cannot carry credentials"),
            ("https://user@host/x.git", "never in the URL"),
            ("https://:pw@host/x.git", "cannot carry credentials"),
            ("https://@host/x.git", "cannot carry credentials"),
            ("https:///x.git", "or be empty"),
            ("https://", "or be empty"),
            ("https://?x", "or be empty"),
            ("https://host/a b.git", "cannot contain spaces"),
            ("https://host/x.git\n", "control characters"),
            ("http://127.0.0.1\\@evil.example/x", "backslashes"),
            ("https://host:99999/x", "not a valid URL"),
            ("http://127.1/x", "write the host as 127.0.0.1"),
        ] {
            let e = error(url);
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn loopback_urls() {
        for yes in [
            "http://localhost/x",
            "http://LOCALHOST:8080/x",
            "http://127.0.0.1:9/x",
            "http://127.8.9.10/x",
            "http://[::1]:8080/x",
        ] {
            assert!(is_loopback_url(yes), "{yes}");
        }
        for no in [
            "http://example.com/x",
            "http://localhost.example.com/x",
            "http://127.0.0.1.example.com/x",
            "http://10.0.0.1/x",
            "http://127.0.0.1\\@evil.example/x",
            "http://localhost@evil.example/x",
            "not a url",
            "",
        ] {
            assert!(!is_loopback_url(no), "{no}");
        }
    }
}
