//! One mirror run: make the remote's branches and tags equal to ours (within the filters), then
//! verify it with `git ls-remote`. What to push is decided by `plan`; this gathers its inputs
//! and talks to git.

use std::collections::BTreeSet;
use std::process::Stdio;

use kura_db::Mirror;
use kura_git::RepoStore;
use tokio::process::Command;

use crate::plan::{filter, plan, Refs, Rules};
use crate::target::Target;
use crate::worker::MirrorSettings;
use crate::MirrorError;

pub struct RunOutcome {
    /// e.g. `main 1a2b3c4, v1.0 89abcde` or `up to date`.
    pub summary: String,
    pub verified: bool,
    /// `refname oid` lines of the remote after the push.
    pub remote_heads: String,
}

/// Environment the AWS credential chain reads, passed through to git's credential helper.
const AWS_ENV_PREFIXES: [&str; 2] = ["AWS_", "ECS_CONTAINER_METADATA_URI"];

pub(crate) async fn run(
    store: &RepoStore,
    settings: &MirrorSettings,
    mirror: &Mirror,
    password: Option<String>,
) -> Result<RunOutcome, MirrorError> {
    let target = Target::parse(&mirror.url)?;
    if let (Target::CodeCommit { region, repository }, true) = (&target, mirror.create_remote) {
        let config = kura_aws::sdk_config(Some(region)).await;
        let ensured = kura_aws::ensure_repository(&config, repository).await?;
        tracing::debug!(?ensured, "CodeCommit repository ensured");
    }
    let url = target.git_url(settings.codecommit_endpoint.as_deref());
    let git = Git {
        store,
        settings,
        mirror,
        target: &target,
        password,
    };
    let rules = Rules {
        branches: &mirror.branches,
        keep_divergent: mirror.keep_divergent,
    };

    let local = local_refs(store, mirror).await?;
    let (remote, remote_head) = git.ls_remote(&url).await?;
    // `plan` is sync: ask git beforehand about every pair it may ask about.
    let mut behind = BTreeSet::new();
    if rules.keep_divergent {
        for (name, oid) in &local {
            match remote.get(name) {
                Some(r) if r != oid && git.is_ancestor(r, oid).await => {
                    behind.insert((r.clone(), oid.clone()));
                }
                _ => {}
            }
        }
    }
    let plan = plan(
        &local,
        &remote,
        remote_head.as_deref(),
        rules,
        |old, new| behind.contains(&(old.to_string(), new.to_string())),
    );
    for name in &plan.diverged {
        tracing::info!(r#ref = %name, "remote ref diverged; kept (keep-divergent-refs)");
    }
    if let Some(args) = plan.push_args(&url) {
        git.remote(&args).await?;
    }
    let remote_after = filter(&mirror.branches, &git.ls_remote(&url).await?.0);
    if remote_after != plan.expected {
        return Err(MirrorError::NotVerified {
            expected: plan.expected.len(),
            found: remote_after.len(),
        });
    }
    Ok(RunOutcome {
        summary: plan.summary(),
        verified: true,
        remote_heads: heads_text(&remote_after),
    })
}

/// The repository's branches and tags within the mirror's filters.
async fn local_refs(store: &RepoStore, mirror: &Mirror) -> Result<Refs, MirrorError> {
    let what = "for-each-ref";
    let mut cmd = store.git();
    cmd.arg("--git-dir")
        .arg(store.path_of(mirror.repo_id))
        .args([
            what,
            "--format=%(objectname) %(refname)",
            "refs/heads",
            "refs/tags",
        ]);
    let out = cmd.output().await.map_err(|io| MirrorError::Spawn {
        what: what.into(),
        io,
    })?;
    if !out.status.success() {
        return Err(MirrorError::Git {
            what: what.into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(filter(
        &mirror.branches,
        &parse_refs(&String::from_utf8_lossy(&out.stdout)),
    ))
}

/// The refs a mirror should carry, as `refname oid` lines like `RunOutcome::remote_heads`.
pub(crate) async fn wanted_heads(
    store: &RepoStore,
    mirror: &Mirror,
) -> Result<String, MirrorError> {
    Ok(heads_text(&local_refs(store, mirror).await?))
}

fn heads_text(refs: &Refs) -> String {
    refs.iter()
        .map(|(n, o)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_refs(text: &str) -> Refs {
    text.lines()
        .filter_map(|l| {
            let (oid, name) = l.split_once([' ', '\t'])?;
            Some((name.trim().to_string(), oid.trim().to_string()))
        })
        .collect()
}

struct Git<'a> {
    store: &'a RepoStore,
    settings: &'a MirrorSettings,
    mirror: &'a Mirror,
    target: &'a Target,
    password: Option<String>,
}

impl Git<'_> {
    fn base(&self) -> Command {
        let mut cmd = self.store.git();
        cmd.arg("--git-dir")
            .arg(self.store.path_of(self.mirror.repo_id));
        cmd
    }

    /// A git command that talks to the remote: credentials only through Kura's helper.
    fn remote_cmd(&self) -> Command {
        let mut cmd = self.base();
        let exe = shell_quote(&self.settings.exe.to_string_lossy());
        cmd.args([
            "-c",
            "credential.helper=",
            "-c",
            "credential.useHttpPath=true",
            // Credentials go to the configured host only: no redirect elsewhere.
            "-c",
            "http.followRedirects=false",
        ])
        .args([
            "-c",
            "http.lowSpeedLimit=1000",
            "-c",
            "http.lowSpeedTime=60",
        ]);
        match self.target {
            Target::CodeCommit { region, .. } => {
                cmd.arg("-c")
                    .arg(format!(
                        "credential.helper=!{exe} credential-helper codecommit"
                    ))
                    .env("KURA_AWS_REGION", region);
                for (k, v) in std::env::vars_os() {
                    let k_s = k.to_string_lossy();
                    if AWS_ENV_PREFIXES.iter().any(|p| k_s.starts_with(p)) {
                        cmd.env(&k, v);
                    }
                }
                // The AWS SDK's shared config lives under the real HOME, not git's.
                if let Some(home) = std::env::var_os("HOME") {
                    let aws = std::path::Path::new(&home).join(".aws");
                    if std::env::var_os("AWS_CONFIG_FILE").is_none() {
                        cmd.env("AWS_CONFIG_FILE", aws.join("config"));
                    }
                    if std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").is_none() {
                        cmd.env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"));
                    }
                }
            }
            Target::Git { .. } => {
                if let Some(user) = &self.mirror.username {
                    cmd.arg("-c")
                        .arg(format!("credential.helper=!{exe} credential-helper env"))
                        .env("KURA_MIRROR_USERNAME", user)
                        .env("KURA_MIRROR_URL", &self.mirror.url)
                        .env(
                            "KURA_MIRROR_PASSWORD",
                            self.password.as_deref().unwrap_or(""),
                        );
                }
            }
        }
        cmd
    }

    async fn output(&self, mut cmd: Command, what: &str) -> Result<String, MirrorError> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = tokio::time::timeout(self.settings.git_timeout, cmd.output())
            .await
            .map_err(|_| MirrorError::Timeout {
                what: what.into(),
                secs: self.settings.git_timeout.as_secs(),
            })?
            .map_err(|io| MirrorError::Spawn {
                what: what.into(),
                io,
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let msg: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
                .collect();
            return Err(MirrorError::Git {
                what: what.into(),
                stderr: msg.join(" / "),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The remote's branches and tags, and the branch its HEAD points to.
    async fn ls_remote(&self, url: &str) -> Result<(Refs, Option<String>), MirrorError> {
        let mut cmd = self.remote_cmd();
        cmd.args([
            "ls-remote",
            "--symref",
            url,
            "HEAD",
            "refs/heads/*",
            "refs/tags/*",
        ]);
        let text = self.output(cmd, "ls-remote").await?;
        let (refs, head) = kura_git::import::parse_ls_remote(&text);
        Ok((refs, head))
    }

    async fn remote(&self, args: &[String]) -> Result<String, MirrorError> {
        let mut cmd = self.remote_cmd();
        cmd.args(args);
        self.output(cmd, &args[0]).await
    }

    async fn is_ancestor(&self, old: &str, new: &str) -> bool {
        let mut cmd = self.base();
        cmd.args(["merge-base", "--is-ancestor", old, new])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        matches!(cmd.status().await, Ok(s) if s.success())
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_sh() {
        assert_eq!(shell_quote("/usr/bin/kura"), "'/usr/bin/kura'");
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }

    #[test]
    fn parses_ref_listings() {
        let r = parse_refs("abc\trefs/heads/main\ndef refs/tags/v1\n");
        assert_eq!(r.get("refs/heads/main").map(String::as_str), Some("abc"));
        assert_eq!(r.get("refs/tags/v1").map(String::as_str), Some("def"));
    }
}
