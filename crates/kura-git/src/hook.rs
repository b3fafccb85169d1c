//! The `pre-receive` hook body: git runs it (through the shim in the hooks folder) inside the
//! push's quarantine; whatever it prints reaches the pusher as `remote:` lines.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::Command;

use crate::policy::{check, PushPolicy, RefUpdate, RepoView};

/// The environment variable carrying the JSON `PushPolicy`.
pub const POLICY_ENV: &str = "KURA_HOOK_POLICY";

/// The environment variable naming the file for the accepted updates (the push log).
pub const PUSH_LOG_ENV: &str = "KURA_PUSH_LOG";

/// Reads updates on stdin, prints refusals; returns the exit code (0 accepts the push).
pub fn pre_receive() -> i32 {
    let Some(raw) = std::env::var_os(POLICY_ENV) else {
        eprintln!("kura hook pre-receive is run by git during a push through Kura; it is not meant to be run by hand");
        return 2;
    };
    let policy: PushPolicy = match serde_json::from_str(&raw.to_string_lossy()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Kura could not read its push policy ({e}); the push was refused, try again or tell the administrator");
            return 1;
        }
    };
    let updates: Vec<RefUpdate> = std::io::stdin()
        .lock()
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| RefUpdate::parse(&l))
        .collect();
    let view = match GitView::load(&updates) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "Kura could not read the repository's refs ({e}); the push was refused, try again"
            );
            return 1;
        }
    };
    let refusals = check(&policy, &updates, &view);
    if refusals.is_empty() {
        note_for_push_log(&updates);
        return 0;
    }
    let mut err = std::io::stderr().lock();
    for r in &refusals {
        let _ = writeln!(err, "{r}");
    }
    let _ = writeln!(
        err,
        "push refused: no ref of {} was updated ({} refused)",
        policy.repo,
        refusals.len()
    );
    1
}

/// The accepted updates go to the file the server named (`KURA_PUSH_LOG`); the server logs
/// those its report-status confirms. A failure here never fails the push.
fn note_for_push_log(updates: &[RefUpdate]) {
    let Some(path) = std::env::var_os(PUSH_LOG_ENV) else {
        return;
    };
    let text: String = updates
        .iter()
        .map(|u| format!("{} {} {}\n", u.old, u.new, u.name))
        .collect();
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("Kura could not note this push for its push log ({e}); the push goes on");
    }
}

/// Reads refs with `git for-each-ref` once; ancestry with `git merge-base --is-ancestor`, which
/// sees the quarantined objects through the inherited environment.
struct GitView {
    refs: HashMap<String, String>,
}

impl GitView {
    fn load(updates: &[RefUpdate]) -> std::io::Result<GitView> {
        let mut refs = HashMap::new();
        if updates.is_empty() {
            return Ok(GitView { refs });
        }
        let out = Command::new("git")
            .args(["for-each-ref", "--format=%(objectname) %(refname)"])
            .args(updates.iter().map(|u| u.name.as_str()))
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((oid, name)) = line.split_once(' ') {
                refs.insert(name.to_string(), oid.to_string());
            }
        }
        Ok(GitView { refs })
    }
}

impl RepoView for GitView {
    fn current(&self, name: &str) -> Option<String> {
        self.refs.get(name).cloned()
    }
    fn is_ancestor(&self, old: &str, new: &str) -> bool {
        Command::new("git")
            .args(["merge-base", "--is-ancestor", old, new])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}
