//! Where a mirror pushes: `codecommit://REGION/REPOSITORY` or any `https://` (or `http://`) Git
//! remote.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    CodeCommit { region: String, repository: String },
    Git { url: String },
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        if let Some(rest) = url.strip_prefix("codecommit://") {
            let (region, repo) = rest.split_once('/').unwrap_or((rest, ""));
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
            if !region_ok || !repo_ok {
                return Err(format!(
                    "{url:?} is not a CodeCommit target: write codecommit://REGION/REPOSITORY, e.g. codecommit://us-east-1/app"
                ));
            }
            return Ok(Target::CodeCommit {
                region: region.to_string(),
                repository: repo.to_string(),
            });
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "{url:?} is not a mirror target: use codecommit://REGION/REPOSITORY or https://HOST/PATH.git"
            ));
        };
        if scheme != "https" && scheme != "http" {
            return Err(format!(
                "mirrors push over HTTPS: {scheme}:// is not supported; use codecommit:// or https://"
            ));
        }
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || host.contains('@') {
            return Err(format!(
                "{}: give the user name with --username and the password on stdin (--password-stdin), never in the URL",
                "mirror URLs cannot carry credentials or be empty"
            ));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("mirror URLs cannot contain spaces or control characters".into());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in [
            "codecommit://us-east-1",
            "codecommit:///app",
            "codecommit://US/app",
            "ssh://host/x",
            "https://user:pw@host/x.git",
            "file:///etc",
            "nothing",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert!(Target::parse("https://git.example.com/team/app.git").is_ok());
    }
}
