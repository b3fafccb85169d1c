//! Repository maintenance: `kura repo maintain` keeps the repository `git fsck` clean, clones
//! and fetches keep working while it repacks, and two processes never maintain one repository
//! at once.

use crate::harness::*;
use std::path::PathBuf;

fn storage(k: &Kura, repo: &str) -> PathBuf {
    let show = k.cli_ok(&["repo", "show", repo]);
    let line = show
        .lines()
        .find(|l| l.starts_with("storage:"))
        .unwrap_or_else(|| panic!("kura repo show prints the storage path: {show}"));
    PathBuf::from(line.trim_start_matches("storage:").trim())
}

/// A repository with many small pushes (many loose objects) and some weight to repack.
fn busy_repo(k: &Kura, name: &str, pushes: usize) -> (String, PathBuf) {
    let full = format!("admin/{name}");
    k.cli_ok(&["repo", "create", &full]);
    let url = k.url_auth("admin", ADMIN_PASSWORD, &format!("/{full}.git"));
    let dir = k.init_repo(name, &url);
    for i in 0..pushes {
        let content: String = (0..2000).map(|j| format!("{i}-{j}\n")).collect();
        k.commit(
            &dir,
            &format!("d{}/f{i}.txt", i % 7),
            &content,
            &format!("c{i}"),
        );
        k.git_ok(&dir, &["push", "-q", "origin", "HEAD:main"]);
    }
    (url, dir)
}

both! {
    fn maintain_keeps_repository_clean_while_fetching(b: Backend) {
        // Maintenance only when asked, so the test controls it.
        let k = Kura::builder(b)
            .env("KURA_MAINTENANCE_DEBOUNCE", "0s")
            .env("KURA_MAINTENANCE_INTERVAL", "0s")
            .start();
        let (url, dir) = busy_repo(&k, "app", 25);
        let path = storage(&k, "admin/app");
        let head = k.rev(&dir, "HEAD");

        // Clones and fetches run while the repository is repacked again and again.
        std::thread::scope(|s| {
            let maint = s.spawn(|| {
                for i in 0..6 {
                    let args: &[&str] = if i % 2 == 0 {
                        &["repo", "maintain", "admin/app"]
                    } else {
                        &["repo", "maintain", "admin/app", "--full"]
                    };
                    let out = k.cli(args).run();
                    assert!(out.ok(), "kura repo maintain failed: {}", out.all());
                    assert!(out.stderr.contains("maintained admin/app"), "{}", out.all());
                }
            });
            for i in 0..6 {
                let c = k.clone_repo(&url, &format!("reader{i}"));
                assert_eq!(k.rev(&c, "HEAD"), head, "a clone during maintenance sees main");
                k.git_ok(&c, &["fetch", "-q", "origin"]);
                k.git_ok(&c, &["fsck", "--no-progress"]);
            }
            maint.join().expect("maintenance thread");
        });

        // The server's copy is intact and maintained: one pack with a bitmap, a commit-graph.
        let fsck = k.git(&path, &["fsck", "--strict", "--no-progress"]);
        assert!(fsck.ok(), "git fsck of the maintained repository: {}", fsck.all());
        let out = k.cli(&["repo", "maintain", "admin/app", "--full"]).run().assert_ok();
        // the summary is in words: what was repacked, and why some things are kept
        assert_contains(&out.stderr, "repacked everything into 1 pack (was ", "what was repacked");
        assert_contains(&out.stderr, "the packs replaced are kept for", "what is kept, and why");
        assert!(!out.stderr.contains(" -> "), "no bare before -> after figures: {}", out.stderr);
        let show = k.cli_ok(&["repo", "show", "admin/app"]);
        assert!(show.contains("objects:        1 pack(s), 0 loose"), "{show}");
        assert!(show.contains("maintenance:    last"), "{show}");
        let packs: Vec<String> = std::fs::read_dir(path.join("objects/pack"))
            .expect("pack dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(packs.iter().any(|p| p.ends_with(".bitmap")), "a reachability bitmap: {packs:?}");
        assert!(
            path.join("objects/info/commit-graph").exists()
                || path.join("objects/info/commit-graphs").exists(),
            "a commit-graph"
        );

        // And still serves: a fresh clone, then a push on top.
        let c = k.clone_repo(&url, "after");
        k.git_ok(&c, &["fsck", "--no-progress"]);
        k.commit(&c, "after.txt", "after\n", "after maintenance");
        k.git_ok(&c, &["push", "-q", "origin", "HEAD:main"]);
    }

    fn two_processes_never_maintain_one_repository_at_once(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_MAINTENANCE_DEBOUNCE", "0s")
            .env("KURA_MAINTENANCE_INTERVAL", "0s")
            .start();
        let (_url, dir) = busy_repo(&k, "big", 3);
        // Weight: ~24 MB of incompressible data makes a full repack take a while.
        cmd("sh", &["-c", "head -c 24000000 /dev/urandom > blob.bin"]).dir(&dir).run().assert_ok();
        k.git_ok(&dir, &["add", "blob.bin"]);
        k.git_ok(&dir, &["commit", "-q", "-m", "blob"]);
        k.git_ok(&dir, &["push", "-q", "origin", "HEAD:main"]);

        let mut saw_busy = false;
        for _ in 0..4 {
            let (a, b2) = std::thread::scope(|s| {
                let a = s.spawn(|| k.cli(&["repo", "maintain", "admin/big", "--full"]).run());
                let b2 = s.spawn(|| k.cli(&["repo", "maintain", "admin/big", "--full"]).run());
                (a.join().expect("a"), b2.join().expect("b"))
            });
            for out in [&a, &b2] {
                if out.ok() {
                    assert!(out.stderr.contains("maintained admin/big"), "{}", out.all());
                } else {
                    assert!(
                        out.stderr.contains("is being maintained by another process"),
                        "a refused maintenance says why: {}",
                        out.all()
                    );
                    saw_busy = true;
                }
            }
            assert!(a.ok() || b2.ok(), "one of two concurrent runs succeeds: {} / {}", a.all(), b2.all());
            if saw_busy {
                break;
            }
        }
        assert!(saw_busy, "two concurrent maintenance runs: the second is refused while the first holds the lease");
        let path = storage(&k, "admin/big");
        let fsck = k.git(&path, &["fsck", "--no-progress"]);
        assert!(fsck.ok(), "{}", fsck.all());
    }
}

both! {
    /// After a push, once the repository has been quiet for the debounce, the server maintains
    /// it on its own.
    fn maintenance_follows_pushes(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_MAINTENANCE_DEBOUNCE", "1s")
            .env("KURA_MAINTENANCE_INTERVAL", "0s")
            .start();
        let (_url, _dir) = busy_repo(&k, "app", 4);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        loop {
            let show = k.cli_ok(&["repo", "show", "admin/app"]);
            let maintained = show.contains("maintenance:    last") && !show.contains("(0 runs)");
            if maintained && show.contains(", 0 loose") {
                assert!(show.contains("last result:"), "{show}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the server did not maintain the repository after the push:\n{show}");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}
