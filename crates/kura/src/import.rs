//! `kura repo import` and `kura repo import-many`: the list file, progress and the summary.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context, Result};
use kura_git::import::Source;
use kura_server::ops::ImportRequest;
use kura_server::{Ops, RepoPath};

/// The most lines `import-many` reads (a list longer than this is split by hand).
const MAX_LINES: usize = 10_000;

pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Credentials {
    pub fn read(username: Option<String>, password_stdin: bool) -> Result<Credentials> {
        let password = password_stdin
            .then(crate::read_stdin_password)
            .transpose()?;
        if password.is_some() && username.is_none() {
            bail!("--password-stdin needs --username (for GitLab any name works with a token, e.g. --username oauth2)");
        }
        Ok(Credentials { username, password })
    }

    fn source(&self, url: &str) -> Source {
        Source {
            url: url.trim().to_string(),
            username: self.username.clone(),
            password: self.password.clone(),
        }
    }
}

fn say(line: &str) {
    eprintln!("{line}");
}

/// Imports one repository and reports it; returns a one-line result.
async fn one(
    ops: &Ops,
    path: &RepoPath,
    url: &str,
    creds: &Credentials,
    public: bool,
) -> Result<String> {
    let imported = ops
        .import_repo(
            path,
            ImportRequest {
                source: creds.source(url),
                public,
                progress: std::io::stderr().is_terminal(),
                say: &say,
            },
        )
        .await?;
    let r = &imported.repo;
    let mut line = format!(
        "imported {} branches and {} tags into {} (default branch {}); packed: {}",
        imported.branches,
        imported.tags,
        r.full_name(),
        r.default_branch,
        imported.maintenance
    );
    if imported.mirrors > 0 {
        line.push_str(&format!("; {} mirror(s) queued", imported.mirrors));
    }
    Ok(line)
}

pub async fn import(
    ops: &Ops,
    base_url: &str,
    path: &RepoPath,
    url: &str,
    creds: Credentials,
    public: bool,
) -> Result<()> {
    let line = one(ops, path, url, &creds, public)
        .await
        .map_err(crate::words::worded)?;
    eprintln!("{line}");
    println!("{base_url}/{path}.git");
    Ok(())
}

/// `NAMESPACE/NAME URL` lines; every line is checked before anything is imported.
fn read_list(file: &Path) -> Result<Vec<(RepoPath, String)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the list {}", file.display()))?;
    let mut out: Vec<(RepoPath, String)> = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, url] = fields[..] else {
            problems.push(format!(
                "line {n}: expected `NAMESPACE/NAME URL`, found {line:?}"
            ));
            continue;
        };
        match name.parse::<RepoPath>() {
            Ok(p) if out.iter().any(|(q, _)| *q == p) => {
                problems.push(format!("line {n}: {p} is listed twice"))
            }
            Ok(p) => match kura_git::import::check_url(url) {
                Ok(()) => out.push((p, url.to_string())),
                Err(e) => problems.push(format!("line {n}: {e}")),
            },
            Err(e) => problems.push(format!("line {n}: {name:?}: {e}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} does not read; nothing was imported:\n  {}",
            file.display(),
            problems.join("\n  ")
        );
    }
    if out.is_empty() {
        bail!(
            "{} lists no repositories (one `NAMESPACE/NAME URL` per line)",
            file.display()
        );
    }
    if out.len() > MAX_LINES {
        bail!(
            "{} lists {} repositories; split it into lists of at most {MAX_LINES}",
            file.display(),
            out.len()
        );
    }
    Ok(out)
}

pub async fn import_many(ops: &Ops, file: &Path, creds: Credentials, public: bool) -> Result<()> {
    let list = read_list(file)?;
    let total = list.len();
    let mut failed = Vec::new();
    for (i, (path, url)) in list.iter().enumerate() {
        eprintln!("[{}/{total}] {path} from {url}", i + 1);
        match one(ops, path, url, &creds, public).await {
            Ok(line) => eprintln!("[{}/{total}] {line}", i + 1),
            Err(e) => {
                let e = crate::words::worded(e);
                eprintln!("[{}/{total}] {path} failed: {e:#}", i + 1);
                failed.push(format!("{path}: {e:#}"));
            }
        }
    }
    println!("imported {} of {total} repositories", total - failed.len());
    if !failed.is_empty() {
        bail!(
            "{} of {total} imports failed (the others are in place; fix these and list only them again):\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}
