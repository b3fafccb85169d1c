//! Concurrent pushes to one branch.

use crate::harness::*;
use std::sync::{Arc, Barrier};
use std::thread;

const CLONES: usize = 4;
const LOSER_MESSAGES: [&str; 3] = ["non-fast-forward", "fetch first", "updated by another push"];

both! {
    /// Four clones of the same commit push to main at once: the winners land, the losers are
    /// told why, nothing is corrupted. Then the losers rebase and retry until all have landed.
    fn concurrent_pushes_to_one_branch(b: Backend) {
        let k = Arc::new(Kura::start(b));
        let tok = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let url = k.url_auth("alice", &tok, "alice/app.git");
        let src = k.init_repo("src", &url);
        let base = k.commit(&src, "base.txt", "base\n", "base");
        k.git_ok(&src, &["push", "-q", "origin", "main"]);

        let mut dirs = Vec::new();
        let mut commits = Vec::new();
        for i in 0..CLONES {
            let d = k.clone_repo(&url, &format!("c{i}"));
            commits.push(k.commit(&d, &format!("file{i}.txt"), &format!("{i}\n").repeat(1000), &format!("change {i}")));
            dirs.push(d);
        }

        // round 1: everyone at once
        let barrier = Arc::new(Barrier::new(CLONES));
        let handles: Vec<_> = dirs
            .iter()
            .cloned()
            .map(|d| {
                let k = k.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let cmd = k.git_cmd(&d, &["push", "origin", "main"]);
                    barrier.wait();
                    cmd.run()
                })
            })
            .collect();
        let results: Vec<Out> = handles.into_iter().map(|h| h.join().expect("push thread")).collect();
        let winners: Vec<usize> = (0..CLONES).filter(|&i| results[i].ok()).collect();
        assert!(!winners.is_empty(), "no push won:\n{}", results.iter().map(|r| r.stderr.as_str()).collect::<Vec<_>>().join("\n----\n"));
        for (i, r) in results.iter().enumerate() {
            if !r.ok() {
                assert!(LOSER_MESSAGES.iter().any(|m| r.stderr.contains(m)),
                    "losing push {i} should say one of {LOSER_MESSAGES:?}:\n{}", r.stderr);
            }
        }
        let check = k.clone_repo(&url, "check1");
        k.git_ok(&check, &["fsck", "--strict"]);
        for &w in &winners {
            assert!(k.git(&check, &["merge-base", "--is-ancestor", &commits[w], "HEAD"]).ok(),
                "winner {w}'s commit {} is not on main:\n{}", commits[w], k.git_ok(&check, &["log", "--oneline"]));
        }
        let first_parent: Vec<String> = k.git_ok(&check, &["rev-list", "--first-parent", "HEAD"]).lines().map(String::from).collect();
        assert_eq!(first_parent.len(), 1 + winners.len(), "exactly the winners landed");
        assert_eq!(first_parent.last(), Some(&base));
        for (i, c) in commits.iter().enumerate() {
            if !winners.contains(&i) {
                assert!(!first_parent.contains(c), "loser {i}'s commit landed anyway");
            }
        }

        // later rounds: losers rebase and push again, still racing
        let mut pending: Vec<usize> = (0..CLONES).filter(|i| !winners.contains(i)).collect();
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            assert!(rounds <= 12, "pushes still failing after {rounds} rounds: {pending:?}");
            let barrier = Arc::new(Barrier::new(pending.len()));
            let handles: Vec<_> = pending
                .iter()
                .map(|&i| {
                    let k = k.clone();
                    let d = dirs[i].clone();
                    let barrier = barrier.clone();
                    thread::spawn(move || {
                        k.git_ok(&d, &["pull", "-q", "--rebase", "origin", "main"]);
                        let cmd = k.git_cmd(&d, &["push", "origin", "main"]);
                        barrier.wait();
                        (i, cmd.run())
                    })
                })
                .collect();
            let mut still = Vec::new();
            for h in handles {
                let (i, r) = h.join().expect("push thread");
                if !r.ok() {
                    assert!(LOSER_MESSAGES.iter().any(|m| r.stderr.contains(m)),
                        "losing push {i} (round {rounds}) should say one of {LOSER_MESSAGES:?}:\n{}", r.stderr);
                    still.push(i);
                }
            }
            assert!(still.len() < pending.len(), "round {rounds}: no push won");
            pending = still;
        }

        let fin = k.clone_repo(&url, "final");
        k.git_ok(&fin, &["fsck", "--strict"]);
        let n: usize = k.git_ok(&fin, &["rev-list", "--count", "HEAD"]).trim().parse().expect("count");
        assert_eq!(n, CLONES + 1, "every change landed exactly once");
        for i in 0..CLONES {
            assert!(fin.join(format!("file{i}.txt")).is_file(), "file{i}.txt missing on main");
        }
        let logs = k.logs();
        assert!(!logs.contains(&tok), "log contains the token");
    }
}
