//! The pre-receive policy: the first line is a protected-branch glob, the rest are ref updates
//! as git hands them to the hook. Parsing, glob matching and the checks never panic.
#![no_main]
use kura_git::policy::{self, ProtectedBranch, PushPolicy, RefUpdate, RepoView};
use libfuzzer_sys::fuzz_target;

struct Empty;

impl RepoView for Empty {
    fn current(&self, _name: &str) -> Option<String> {
        None
    }
    fn is_ancestor(&self, old: &str, new: &str) -> bool {
        old < new
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = s.lines();
    let pattern = lines.next().unwrap_or("main").to_string();
    let updates: Vec<RefUpdate> = lines.filter_map(RefUpdate::parse).collect();
    for u in &updates {
        let _ = policy::pattern_matches(&pattern, &u.name);
    }
    let p = PushPolicy {
        repo: "team/app".into(),
        pusher: "alice".into(),
        pusher_is_admin: data.len() % 2 == 0,
        default_branch: "main".into(),
        protected: vec![ProtectedBranch {
            pattern,
            allow_push: vec!["bob".into()],
        }],
    };
    let refusals = policy::check(&p, &updates, &Empty);
    assert!(refusals.len() <= updates.len());
});
