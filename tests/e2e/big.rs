//! Large pushes within a memory bound, graceful shutdown with a push in flight.

use crate::harness::*;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

/// Peak RSS allowed for the kura process while 200 MB go through it.
const RSS_LIMIT_KB: u64 = 100 * 1024;

fn big_push(b: Backend) {
    let k = Kura::start(b);
    let tok = k.user_with_token("alice");
    k.cli_ok(&["repo", "create", "alice/big"]);
    let url = k.url_auth("alice", &tok, "alice/big.git");
    let src = k.init_repo("src", &url);
    // random data does not compress: store it without trying, to save time on both sides
    k.git_ok(&src, &["config", "core.compression", "0"]);
    k.git_ok(&src, &["config", "core.bigFileThreshold", "1m"]);
    for i in 0..4 {
        random_file(&src.join(format!("blob{i}.bin")), 50);
    }
    k.git_ok(&src, &["add", "-A"]);
    k.git_ok(&src, &["commit", "-q", "-m", "200 MB of random data"]);
    let head = k.rev(&src, "HEAD");
    let rss_start = rss_kb_peak(k.pid());

    let t = Instant::now();
    let out = k
        .git_cmd(&src, &["push", "origin", "main"])
        .timeout(Duration::from_secs(300))
        .run()
        .assert_ok();
    let push_time = t.elapsed();
    let rss_push = rss_kb_peak(k.pid());
    assert!(
        rss_push < RSS_LIMIT_KB,
        "kura's peak RSS reached {rss_push} kB (limit {RSS_LIMIT_KB} kB) during a 200 MB push ({} backend)\n{}",
        k.backend_name(),
        out.stderr
    );
    assert_eq!(k.remote_ref(&url, "refs/heads/main"), Some(head.clone()));

    let t = Instant::now();
    let dst = k.work.join("dst");
    k.git_cmd(&k.work, &["clone", "-q", &url, "dst"])
        .timeout(Duration::from_secs(300))
        .run()
        .assert_ok();
    let clone_time = t.elapsed();
    let rss_clone = rss_kb_peak(k.pid());
    assert!(
        rss_clone < RSS_LIMIT_KB,
        "kura's peak RSS reached {rss_clone} kB during a 200 MB clone"
    );
    assert_eq!(k.rev(&dst, "HEAD"), head);
    k.git_cmd(&dst, &["fsck", "--full"])
        .timeout(Duration::from_secs(300))
        .run()
        .assert_ok();
    for i in 0..4 {
        let n = std::fs::metadata(dst.join(format!("blob{i}.bin")))
            .expect("file")
            .len();
        assert_eq!(n, 50 * 1024 * 1024);
    }
    eprintln!(
        "big push ({}): push {push_time:?}, clone {clone_time:?}, VmHWM start {rss_start} kB, after push {rss_push} kB, after clone {rss_clone} kB",
        k.backend_name()
    );
}

#[test]
fn big_push_200mb_memory_sqlite() {
    big_push(Backend::Sqlite)
}

#[test]
fn big_push_200mb_memory_postgres() {
    big_push(Backend::Postgres)
}

both! {
    /// SIGTERM while a ~30 MB push is being uploaded: the push completes, kura exits 0, and a
    /// restarted kura on the same data serves the pushed commit.
    fn graceful_shutdown_during_push(b: Backend) {
        let mut k = Kura::start(b);
        let (tok, src, base, head) = pushed_base_and_big_commit(&k, 30);

        // the push goes through a proxy that uploads at about 8 MB/s (about 4 s in all)
        let proxy = slow_proxy(k.addr(), 8 * 1024 * 1024);
        let via_proxy = format!("http://alice:{}@{}/alice/app.git", pct(&tok), proxy.addr);
        let cmd = k.git_cmd(&src, &["push", &via_proxy, "main"]).timeout(Duration::from_secs(120));
        let pusher = thread::spawn(move || cmd.run());

        let t = Instant::now();
        while proxy.upstream_bytes.load(Ordering::SeqCst) < 8 * 1024 * 1024 {
            assert!(t.elapsed() < Duration::from_secs(60), "the push never got going");
            if pusher.is_finished() {
                let out = pusher.join().expect("push thread");
                panic!("push ended before SIGTERM could be sent:\n{}", out.all());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let sent_at = proxy.upstream_bytes.load(Ordering::SeqCst);
        k.sigterm();
        // no new requests are taken while the push drains
        thread::sleep(Duration::from_millis(500));
        if let Ok(r) = k.req("GET", "/healthz").try_send() {
            assert_ne!(
                r.status,
                200,
                "kura must stop accepting requests after SIGTERM: {}",
                r.describe()
            );
        }
        let status = k.wait_exit(Duration::from_secs(60));
        let out = pusher.join().expect("push thread");
        assert!(
            out.status.success(),
            "the push in flight at SIGTERM (after {sent_at} bytes) must complete:\n{}\n--- kura log ---\n{}",
            out.stderr,
            k.logs()
        );
        assert!(status.success(), "kura must exit 0 after SIGTERM, got {status}\n{}", k.logs());
        assert!(
            proxy.upstream_bytes.load(Ordering::SeqCst) > 30 * 1024 * 1024,
            "the whole pack went through after SIGTERM"
        );

        // same data, new process
        k.spawn();
        let url = k.url_auth("alice", &tok, "alice/app.git");
        assert_eq!(k.remote_ref(&url, "refs/heads/main"), Some(head.clone()), "pushed commit after restart");
        let dst = k.clone_repo(&url, "after-restart");
        assert_eq!(k.rev(&dst, "HEAD"), head);
        assert_eq!(k.rev(&dst, "HEAD~1"), base);
        k.git_ok(&dst, &["fsck"]);
        let status = k.stop_sigterm();
        assert!(status.success(), "idle kura must exit 0 on SIGTERM, got {status}");
    }
}

/// alice/app with a pushed base commit, and in the clone `src` (origin: alice's token) one more
/// commit of `mb` MiB of random data, not pushed: `(token, src, base, head)`.
fn pushed_base_and_big_commit(k: &Kura, mb: u64) -> (String, std::path::PathBuf, String, String) {
    let tok = k.user_with_token("alice");
    k.cli_ok(&["repo", "create", "alice/app"]);
    let url = k.url_auth("alice", &tok, "alice/app.git");
    let src = k.init_repo("src", &url);
    let base = k.commit(&src, "README", "base\n", "base");
    k.git_ok(&src, &["push", "-q", "origin", "main"]);
    // Random data does not compress: store it without trying.
    k.git_ok(&src, &["config", "core.compression", "0"]);
    random_file(&src.join("payload.bin"), mb);
    k.git_ok(&src, &["add", "payload.bin"]);
    k.git_ok(&src, &["commit", "-q", "-m", &format!("{mb} MB")]);
    let head = k.rev(&src, "HEAD");
    (tok, src, base, head)
}

/// Lines of the server's log for finished `info/refs` requests.
fn finished_advertisements(k: &Kura) -> usize {
    k.logs()
        .lines()
        .filter(|l| l.contains("finished processing request") && l.contains("/info/refs"))
        .count()
}

/// A rolling deploy's SIGTERM between a push's first request and its pack (the client builds
/// a 200 MB pack in between): `/readyz` fails at once, the pack's requests that come after the
/// signal are still served during `shutdown_blackout`, the push succeeds and Kura exits 0.
#[test]
fn sigterm_between_a_pushs_requests_loses_no_push() {
    let mut k = Kura::builder(Backend::Sqlite)
        .env("KURA_SHUTDOWN_BLACKOUT", "10s")
        .start();
    let (tok, src, _base, head) = pushed_base_and_big_commit(&k, 200);

    let before = finished_advertisements(&k);
    let cmd = k
        .git_cmd(&src, &["push", "origin", "main"])
        .timeout(Duration::from_secs(300));
    let pusher = thread::spawn(move || cmd.run());
    wait_until(Duration::from_secs(60), "the push's first request", || {
        finished_advertisements(&k) > before || pusher.is_finished()
    });
    assert!(
        !pusher.is_finished(),
        "the push ended before SIGTERM could be sent"
    );
    k.sigterm();
    wait_until(
        Duration::from_secs(10),
        "/readyz failing after SIGTERM",
        || {
            k.req("GET", "/readyz")
                .try_send()
                .is_ok_and(|r| r.status == 503)
        },
    );
    let r = k.get("/healthz");
    assert_eq!(
        r.status,
        200,
        "new requests are still served in the blackout: {}",
        r.describe()
    );

    let out = pusher.join().expect("push thread");
    assert!(
        out.status.success(),
        "the push whose pack came after SIGTERM must succeed:\n{}\n--- kura log ---\n{}",
        out.stderr,
        k.logs()
    );
    let status = k.wait_exit(Duration::from_secs(90));
    assert!(
        status.success(),
        "kura must exit 0 after SIGTERM, got {status}\n{}",
        k.logs()
    );
    assert_contains(
        &k.logs(),
        "stopping: /readyz fails now",
        "the log says what SIGTERM started",
    );

    k.spawn();
    let url = k.url_auth("alice", &tok, "alice/app.git");
    assert_eq!(
        k.remote_ref(&url, "refs/heads/main"),
        Some(head),
        "the pushed commit is there after restart"
    );
    let st = k.stop_sigterm();
    assert!(st.success());
}
