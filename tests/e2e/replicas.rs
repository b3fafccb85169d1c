//! Several replicas on one shared folder: what must hold when the folder is a network file
//! system (bindfs mounts that cache like an NFS client, see `harness::mount`).

use crate::harness::*;

/// SQLite's locks do not hold on a network file system: `kura serve` refuses such a folder
/// before writing anything into it, says to use PostgreSQL, and the override lets it start.
#[test]
fn sqlite_on_a_network_file_system_is_refused() {
    let base = tempfile::tempdir().expect("temp dir");
    let mount = CachingMount::new(&base.path().join("real"), &base.path().join("mnt"), 1);
    let data = mount.at.join("data");
    let mut k = Kura::builder(Backend::Sqlite)
        .env("KURA_DATA_DIR", &data.display().to_string())
        .prepare();
    let out = k.cli(&["serve"]).run().assert_err();
    assert_contains(
        &out.stderr,
        "is on a network file system (FUSE)",
        "the refusal names the file system",
    );
    assert_contains(&out.stderr, "use PostgreSQL", "the refusal says what to do");
    assert_contains(
        &out.stderr,
        "allow_sqlite_on_network_fs",
        "the refusal names the override",
    );
    assert!(
        !data.exists(),
        "a refused serve writes nothing into the shared folder"
    );

    k.set_env("KURA_ALLOW_SQLITE_ON_NETWORK_FS", "true");
    k.spawn();
    let r = k.get("/readyz");
    assert_eq!(
        r.status,
        200,
        "with the override kura serves: {}",
        r.describe()
    );
    assert!(
        data.join("kura.db").exists(),
        "the database is in the folder it was told"
    );
    let st = k.stop_sigterm();
    assert!(st.success(), "kura serve stops cleanly: {st}\n{}", k.logs());
}

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the mounts cache lookups, attributes and failed lookups (s), and the replicas'
/// `shared_cache_window`, which must cover it.
const CACHE_SECS: u32 = 5;
const WINDOW: &str = "6s";
const WINDOW_PAUSE: Duration = Duration::from_millis(6500);

/// Two `kura serve` on one PostgreSQL database, each with the data folder through its own
/// caching mount of one real folder. Fields drop in order: servers, then mounts.
struct Pair {
    b: Kura,
    a: Kura,
    _mb: CachingMount,
    _ma: CachingMount,
    _base: tempfile::TempDir,
}

fn pair(extra: &[(&str, &str)]) -> Pair {
    let base = tempfile::tempdir().expect("temp dir");
    let real = base.path().join("real");
    let ma = CachingMount::new(&real, &base.path().join("a"), CACHE_SECS);
    let mb = CachingMount::new(&real, &base.path().join("b"), CACHE_SECS);
    let mut builder = Kura::builder(Backend::Postgres)
        .env("KURA_DATA_DIR", &ma.at.join("data").display().to_string())
        .env("KURA_SHARED_CACHE_WINDOW", WINDOW)
        // Maintenance only when the test asks for it (through either replica).
        .env("KURA_MAINTENANCE_DEBOUNCE", "0s")
        .env("KURA_MAINTENANCE_INTERVAL", "0s");
    for (k, v) in extra {
        builder = builder.env(k, v);
    }
    let a = builder.start();
    let b = a.sibling(&[("KURA_DATA_DIR", &mb.at.join("data").display().to_string())]);
    Pair {
        b,
        a,
        _mb: mb,
        _ma: ma,
        _base: base,
    }
}

/// Branches and tags of `url` as `git ls-remote` shows them, or the error.
fn remote_refs(k: &Kura, url: &str) -> Result<BTreeMap<String, String>, String> {
    let out = k.git(&k.work, &["ls-remote", "--refs", "--heads", "--tags", url]);
    if !out.ok() {
        return Err(out.all());
    }
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, r)| (r.trim().to_string(), id.trim().to_string()))
        .collect())
}

/// The client's own branches and tags: what the server must show after a push of them all.
fn local_refs(k: &Kura, dir: &Path) -> BTreeMap<String, String> {
    k.git_ok(
        dir,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/heads",
            "refs/tags",
        ],
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(r, id)| (r.to_string(), id.to_string()))
    .collect()
}

fn maintain_through(k: &Kura, tok: &str) -> Result<(), String> {
    let r = k
        .req("POST", "/api/v1/repos/alice/app/maintain")
        .bearer(tok)
        .send();
    match r.status {
        200 | 409 => Ok(()),
        _ => Err(format!(
            "maintenance through {}: {}",
            k.base(),
            r.describe()
        )),
    }
}

/// Alternating push-through-A / poll, fetch and clone-through-B cycles over caching mounts
/// (new branches, tags, force-updates, deletions, a poll before each push, maintenance through
/// either replica every 25 cycles, and now and then a pause past the cache window so that B
/// serves from its own mount): every answer of B is the state A just accepted. Then pushes
/// split across both replicas at once: fast-forwards succeed, one of two racing pushes to one
/// branch is refused as git refuses it, and the result is consistent and fsck-clean.
#[test]
fn a_push_through_one_replica_is_served_by_the_other_at_once() {
    let cycles: usize = std::env::var("KURA_TEST_REPLICA_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let p = pair(&[]);
    let (a, b) = (&p.a, &p.b);
    let tok = a.user_with_token("alice");
    let admin = a.token("alice", "admin");
    a.cli_ok(&["repo", "create", "alice/app"]);
    let url_a = a.url_auth("alice", &tok, "alice/app.git");
    let url_b = b.url_auth("alice", &tok, "alice/app.git");
    let src = a.init_repo("src", &url_a);
    let mut errors: Vec<String> = Vec::new();
    let mut dst: Option<std::path::PathBuf> = None;
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let started = Instant::now();
    for i in 1..=cycles {
        // The poll before the push: B looks at the refs (and caches what it does not find).
        match remote_refs(b, &url_b) {
            Ok(seen) if seen == expected => {}
            Ok(seen) => errors.push(format!(
                "cycle {i}: B's poll showed {seen:?}, expected {expected:?}"
            )),
            Err(e) => errors.push(format!("cycle {i}: B's poll failed: {e}")),
        }
        a.commit(
            &src,
            &format!("f{}.txt", i % 17),
            &format!("cycle {i}\n"),
            &format!("cycle {i}"),
        );
        let mut push: Vec<String> = vec!["main".into()];
        if i % 3 == 0 {
            a.git_ok(&src, &["branch", &format!("b{i}")]);
            push.push(format!("b{i}"));
        }
        if i % 5 == 0 {
            a.git_ok(&src, &["tag", "-a", "-m", "t", &format!("t{i}")]);
            push.push(format!("refs/tags/t{i}"));
        }
        if i % 7 == 0 {
            // An unprotected branch rewritten: a force-update to a commit off main.
            a.git_ok(&src, &["checkout", "-q", "-B", "wip", "HEAD~1"]);
            a.commit(&src, "wip.txt", &format!("wip {i}\n"), "wip");
            a.git_ok(&src, &["checkout", "-q", "main"]);
            push.push("+wip".into());
        }
        if i % 11 == 0 {
            if let Some(old) = local_refs(a, &src)
                .keys()
                .find(|r| r.starts_with("refs/heads/b"))
                .cloned()
            {
                let short = old.trim_start_matches("refs/heads/").to_string();
                a.git_ok(&src, &["branch", "-D", &short]);
                push.push(format!(":{short}"));
            }
        }
        let mut args = vec!["push", "-q", "origin"];
        args.extend(push.iter().map(String::as_str));
        let out = a.git(&src, &args);
        if !out.ok() {
            errors.push(format!("cycle {i}: push through A failed: {}", out.all()));
            continue;
        }
        expected = local_refs(a, &src);
        // Right after: B shows exactly that, fetches it and clones it.
        match remote_refs(b, &url_b) {
            Ok(seen) if seen == expected => {}
            Ok(seen) => errors.push(format!(
                "cycle {i}: B showed {seen:?} after the push, expected {expected:?}"
            )),
            Err(e) => errors.push(format!("cycle {i}: ls-remote through B failed: {e}")),
        }
        match &dst {
            None => {
                let out = b.git(&b.work, &["clone", "-q", &url_b, "dst"]);
                if out.ok() {
                    dst = Some(b.work.join("dst"));
                } else {
                    errors.push(format!(
                        "cycle {i}: the first clone through B failed: {}",
                        out.all()
                    ));
                }
            }
            Some(d) => {
                let out = b.git(
                    d,
                    &[
                        "fetch",
                        "-q",
                        "--prune",
                        "--prune-tags",
                        "--force",
                        "origin",
                        "+refs/heads/*:refs/remotes/origin/*",
                        "+refs/tags/*:refs/tags/*",
                    ],
                );
                if !out.ok() {
                    errors.push(format!("cycle {i}: fetch through B failed: {}", out.all()));
                } else if b.rev(d, "refs/remotes/origin/main") != expected["refs/heads/main"] {
                    errors.push(format!(
                        "cycle {i}: fetch through B did not bring the new main"
                    ));
                }
            }
        }
        if i % 10 == 0 {
            let name = format!("clone-{i}");
            let out = b.git(&b.work, &["clone", "-q", "--mirror", &url_b, &name]);
            if !out.ok() {
                errors.push(format!("cycle {i}: clone through B failed: {}", out.all()));
            } else {
                let dir = b.work.join(&name);
                let fsck = b.git(&dir, &["fsck", "--no-progress"]);
                if !fsck.ok() {
                    errors.push(format!(
                        "cycle {i}: fsck of the clone through B: {}",
                        fsck.all()
                    ));
                }
                if local_refs(b, &dir) != expected {
                    errors.push(format!(
                        "cycle {i}: the clone through B has other refs than were pushed"
                    ));
                }
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        if i % 25 == 0 {
            let through = if i % 50 == 0 { a } else { b };
            if let Err(e) = maintain_through(through, &admin) {
                errors.push(format!("cycle {i}: {e}"));
            }
        }
        if i % 30 == 0 {
            // Past the window: the lease has run out and B answers from its own mount.
            std::thread::sleep(WINDOW_PAUSE);
        }
    }
    let sequential = started.elapsed();

    // Pushes split across both replicas at once.
    let rounds = (cycles / 10).max(5);
    let sa = a.clone_repo(&url_a, "split-a");
    let sb = b.clone_repo(&url_b, "split-b");
    let mut raced = (0, 0);
    for r in 0..rounds {
        a.git_ok(&sa, &["fetch", "-q", "origin"]);
        b.git_ok(&sb, &["fetch", "-q", "origin"]);
        a.git_ok(&sa, &["checkout", "-q", "-B", "pa", "origin/main"]);
        let ha = a.commit(&sa, "pa.txt", &format!("{r}\n"), "pa");
        b.git_ok(&sb, &["checkout", "-q", "-B", "pb", "origin/main"]);
        let hb = b.commit(&sb, "pb.txt", &format!("{r}\n"), "pb");
        // Fast-forwards of two branches through the two replicas at once: both succeed.
        let ca = a.git_cmd(&sa, &["push", "-q", "origin", "+pa:pa"]);
        let cb = b.git_cmd(&sb, &["push", "-q", "origin", "+pb:pb"]);
        let (ta, tb) = (
            std::thread::spawn(move || ca.run()),
            std::thread::spawn(move || cb.run()),
        );
        for (o, who) in [
            (ta.join().expect("push a"), "A"),
            (tb.join().expect("push b"), "B"),
        ] {
            if !o.ok() {
                errors.push(format!(
                    "round {r}: a fast-forward push through {who} failed: {}",
                    o.all()
                ));
            }
        }
        // One branch both push a different commit to, from the same parent: one wins, the
        // other is refused as git refuses a push that lost a race.
        let parent = match a.git(&sa, &["rev-parse", "-q", "--verify", "origin/race"]) {
            o if o.ok() => o.stdout.trim().to_string(),
            _ => a.rev(&sa, "origin/main"),
        };
        for (k, d, who) in [(a, &sa, "a"), (b, &sb, "b")] {
            k.git_ok(d, &["checkout", "-q", "-B", "race", &parent]);
            k.commit(d, "race.txt", &format!("{who} {r}\n"), who);
        }
        let ca = a.git_cmd(&sa, &["push", "origin", "race:race"]);
        let cb = b.git_cmd(&sb, &["push", "origin", "race:race"]);
        let (ta, tb) = (
            std::thread::spawn(move || ca.run()),
            std::thread::spawn(move || cb.run()),
        );
        let (oa, ob) = (ta.join().expect("push a"), tb.join().expect("push b"));
        for (o, who) in [(&oa, "A"), (&ob, "B")] {
            if !o.ok() && !o.stderr.contains("rejected]") {
                errors.push(format!("round {r}: the racing push through {who} failed otherwise than git refuses: {}", o.all()));
            }
        }
        if oa.ok() == ob.ok() {
            errors.push(format!(
                "round {r}: exactly one racing push must win:\n{}\n{}",
                oa.all(),
                ob.all()
            ));
        }
        raced.0 += oa.ok() as usize;
        raced.1 += ob.ok() as usize;
        match (remote_refs(a, &url_a), remote_refs(b, &url_b)) {
            (Ok(ra), Ok(rb)) => {
                if ra != rb {
                    errors.push(format!("round {r}: A and B disagree: {ra:?} vs {rb:?}"));
                }
                if rb.get("refs/heads/pa") != Some(&ha) || rb.get("refs/heads/pb") != Some(&hb) {
                    errors.push(format!("round {r}: B does not show both fast-forwards"));
                }
                let winner = if oa.ok() {
                    a.rev(&sa, "race")
                } else {
                    b.rev(&sb, "race")
                };
                if rb.get("refs/heads/race") != Some(&winner) {
                    errors.push(format!("round {r}: the race's winner is not what B shows"));
                }
            }
            (ea, eb) => errors.push(format!("round {r}: ls-remote failed: {ea:?} {eb:?}")),
        }
    }
    let last = b.clone_repo(&url_b, "final");
    let fsck = b.git(&last, &["fsck", "--no-progress"]);
    if !fsck.ok() {
        errors.push(format!("fsck of the final clone through B: {}", fsck.all()));
    }
    eprintln!(
        "{cycles} cycles in {:.1} s, then {rounds} split rounds (racing pushes won: A {}, B {}); {} errors",
        sequential.as_secs_f64(),
        raced.0,
        raced.1,
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "{} errors over {cycles} cycles and {rounds} split rounds:\n{}\n--- A ---\n{}\n--- B ---\n{}",
        errors.len(),
        errors.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
        tail(&a.logs()),
        tail(&b.logs())
    );
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Clones through B, from its own mount and forwarded, while A is pushed to and maintained
/// (full repacks that delete the packs B's clones may be reading): no clone fails.
#[test]
fn maintenance_in_one_replica_never_breaks_clones_in_the_other() {
    let p = pair(&[]);
    let (a, b) = (&p.a, &p.b);
    let tok = a.user_with_token("alice");
    a.cli_ok(&["repo", "create", "alice/app"]);
    let url_a = a.url_auth("alice", &tok, "alice/app.git");
    let url_b = b.url_auth("alice", &tok, "alice/app.git");
    let src = a.init_repo("src", &url_a);
    for i in 0..40 {
        a.commit(
            &src,
            &format!("d{}/f{i}.txt", i % 5),
            &"x".repeat(2000 + i),
            &format!("c{i}"),
        );
    }
    a.git_ok(&src, &["push", "-q", "origin", "main"]);
    std::thread::sleep(WINDOW_PAUSE);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cloner = {
        let stop = stop.clone();
        let cmd_for = |n: usize| {
            b.git_cmd(
                &b.work,
                &["clone", "-q", "--bare", &url_b, &format!("c{n}")],
            )
        };
        let cmds: Vec<Cmd> = (0..200).map(cmd_for).collect();
        let work = b.work.clone();
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut done = 0;
            for (n, c) in cmds.into_iter().enumerate() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) && done >= 10 {
                    break;
                }
                let out = c.run();
                if !out.ok() {
                    failures.push(out.all());
                }
                let _ = std::fs::remove_dir_all(work.join(format!("c{n}")));
                done += 1;
            }
            (done, failures)
        })
    };
    for round in 0..4 {
        a.commit(&src, "round.txt", &format!("{round}\n"), "round");
        a.git_ok(&src, &["push", "-q", "origin", "main"]);
        let r = a
            .req("POST", "/api/v1/repos/alice/app/maintain?full=true")
            .bearer(&a.token("alice", "admin"))
            .send();
        assert_eq!(r.status, 200, "maintenance through A: {}", r.describe());
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (done, failures) = cloner.join().expect("cloner");
    assert!(done >= 10, "too few clones ran: {done}");
    assert!(
        failures.is_empty(),
        "{} of {done} clones through B failed while A maintained:\n{}\n--- B ---\n{}",
        failures.len(),
        failures.join("\n"),
        tail(&b.logs())
    );
}

/// kill -9 of the replica that holds a repository in the middle of a push: the other replica
/// answers 503 with a reason until the lease runs out (one cache window), then serves it and
/// takes pushes (the dead one's lock files are removed), and the repository is fsck-clean.
#[test]
fn a_replica_killed_mid_push_loses_nothing_and_leaves_nothing_locked() {
    let mut p = pair(&[]);
    let tok = p.a.user_with_token("alice");
    p.a.cli_ok(&["repo", "create", "alice/app"]);
    let url_a = p.a.url_auth("alice", &tok, "alice/app.git");
    let url_b = p.b.url_auth("alice", &tok, "alice/app.git");
    let src = p.a.init_repo("src", &url_a);
    let base = p.a.commit(&src, "README", "base\n", "base");
    p.a.git_ok(&src, &["push", "-q", "origin", "main"]);
    p.a.git_ok(&src, &["config", "core.compression", "0"]);
    random_file(&src.join("big.bin"), 30);
    p.a.git_ok(&src, &["add", "big.bin"]);
    p.a.git_ok(&src, &["commit", "-q", "-m", "big"]);

    let proxy = slow_proxy(p.a.addr(), 4 * 1024 * 1024);
    let via = format!("http://alice:{}@{}/alice/app.git", pct(&tok), proxy.addr);
    let cmd =
        p.a.git_cmd(&src, &["push", &via, "main"])
            .timeout(Duration::from_secs(120));
    let pusher = std::thread::spawn(move || cmd.run());
    wait_until(Duration::from_secs(60), "the push under way", || {
        proxy
            .upstream_bytes
            .load(std::sync::atomic::Ordering::SeqCst)
            > 8 * 1024 * 1024
    });
    p.a.kill9();
    let out = pusher.join().expect("push thread");
    assert!(
        !out.ok(),
        "a push cut off by kill -9 must fail, not report success"
    );

    // Until the lease has run out B says why; then it serves and takes pushes.
    let t = Instant::now();
    let mut saw_wait = false;
    loop {
        let o = p.b.git(&p.b.work, &["ls-remote", &url_b]);
        if o.ok() {
            break;
        }
        assert_contains(
            &o.stderr,
            "retry",
            "a refusal while the lease runs out says to retry",
        );
        saw_wait = true;
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "B still refuses after 30 s: {}",
            o.all()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "B served the repository {:.1} s after the kill (refused meanwhile: {saw_wait})",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        p.b.remote_ref(&url_b, "refs/heads/main"),
        Some(base.clone()),
        "the cut-off push changed nothing"
    );
    let other = p.b.clone_repo(&url_b, "after-kill");
    let next = p.b.commit(&other, "after.txt", "after\n", "after the kill");
    p.b.git_ok(&other, &["push", "-q", "origin", "main"]);
    assert_eq!(
        p.b.remote_ref(&url_b, "refs/heads/main"),
        Some(next),
        "B takes pushes"
    );
    let check = p.b.clone_repo(&url_b, "check");
    p.b.git_ok(&check, &["fsck", "--no-progress"]);

    // A comes back on its mount and serves what B accepted (it forwards to B meanwhile).
    p.a.spawn();
    let url_a = p.a.url_auth("alice", &tok, "alice/app.git");
    assert_eq!(
        p.a.remote_ref(&url_a, "refs/heads/main"),
        p.b.remote_ref(&url_b, "refs/heads/main")
    );
}
