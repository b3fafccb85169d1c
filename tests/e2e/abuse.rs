//! Abuse that must not take Kura down for everyone: bursts of wrong passwords (bounded
//! verifications, bounded memory), repeated sign-ins (cached), while a bystander keeps working.

use std::sync::{Arc, Mutex};

use crate::harness::*;

/// `kura_password_verifications_total` from `/metrics`.
fn verifications(k: &Kura, admin: &str) -> u64 {
    let r = k.req("GET", "/metrics").bearer(admin).send();
    assert_eq!(r.status, 200, "{}", r.describe());
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix("kura_password_verifications_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no verification counter in /metrics:\n{}", r.text()))
}

/// Sends `n` sign-ins at once from `threads` threads; returns the status codes.
fn burst(k: &Kura, n: usize, req: impl Fn(usize) -> Req + Sync) -> Vec<u16> {
    let statuses = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..n {
            let (statuses, req) = (&statuses, &req);
            s.spawn(move || {
                let status = match req(t).try_send() {
                    Ok(r) => r.status,
                    Err(_) => 0,
                };
                statuses
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(status);
            });
        }
    });
    let _ = k;
    statuses.into_inner().unwrap_or_else(|p| p.into_inner())
}

both! {
    /// 150 simultaneous wrong passwords from one address: at most `auth_max_failures`
    /// verifications run, the rest are throttled at once.
    fn password_burst_from_one_address(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_AUTH_MAX_FAILURES", "10")
            .env("KURA_TRUSTED_PROXIES", "127.0.0.1/32")
            .start();
        let admin = k.token("admin", "admin");
        k.add_user("alice", "alice-pw-123");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let before = verifications(&k, &admin);
        let statuses = burst(&k, 150, |_| {
            k.req("GET", "/alice/app.git/info/refs?service=git-upload-pack")
                .basic("alice", "wrong-password")
                .header("X-Forwarded-For", "10.66.0.1")
        });
        let wrong = statuses.iter().filter(|s| **s == 401).count();
        let throttled = statuses.iter().filter(|s| **s == 429).count();
        assert!(wrong <= 10, "at most 10 wrong passwords checked, {wrong} were: {statuses:?}");
        assert_eq!(wrong + throttled, 150, "every other attempt throttled: {statuses:?}");
        let ran = verifications(&k, &admin) - before;
        assert!(ran <= 10, "{ran} argon2 verifications for a burst from one address");
    }

    /// 150 wrong passwords from 150 addresses at once: verifications queue behind a few slots,
    /// memory stays bounded, and another user's clone still works meanwhile.
    fn password_burst_from_many_addresses(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_TRUSTED_PROXIES", "127.0.0.1/32")
            .env("KURA_AUTH_CONCURRENCY", "2")
            .start();
        let bob = k.user_with_token("bob");
        k.cli_ok(&["repo", "create", "bob/app"]);
        let dir = k.init_repo("w", &k.url_auth("bob", &bob, "bob/app.git"));
        k.commit(&dir, "a.txt", "1\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let rss_before = rss_kb_peak(k.pid());
        let clone_ok = Arc::new(Mutex::new(None));
        let statuses = std::thread::scope(|s| {
            let clone_ok = clone_ok.clone();
            let k2 = &k;
            let bob = bob.clone();
            s.spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let t = std::time::Instant::now();
                let out = k2.git(&k2.work, &["clone", "-q", &k2.url_auth("bob", &bob, "bob/app.git"), "bystander"]);
                println!("abuse: bystander clone during the password burst: {:.2} s", t.elapsed().as_secs_f64());
                *clone_ok.lock().unwrap_or_else(|p| p.into_inner()) = Some(out.ok());
            });
            burst(&k, 150, |t| {
                k.req("GET", "/bob/app.git/info/refs?service=git-upload-pack")
                    .basic(&format!("ghost{t}"), "wrong-password")
                    .header("X-Forwarded-For", &format!("10.77.{}.{}", t / 200, t % 200 + 1))
            })
        });
        assert!(statuses.iter().all(|s| [401, 503].contains(s)), "wrong (401) or busy (503): {statuses:?}");
        assert_eq!(*clone_ok.lock().unwrap_or_else(|p| p.into_inner()), Some(true), "the bystander's token clone worked");
        let peak_mb = rss_kb_peak(k.pid()) / 1024;
        assert!(peak_mb < 200, "Kura's peak RSS {peak_mb} MB (before the burst {} MB)", rss_before / 1024);
        println!("abuse: 150 wrong passwords from 150 addresses: Kura peak RSS {peak_mb} MB; 503s: {}", statuses.iter().filter(|s| **s == 503).count());
    }

    /// git signs in on every request: the same right password is verified once, not each time;
    /// a changed password is verified afresh and the old one refused.
    fn repeated_sign_ins_are_cached(b: Backend) {
        let k = Kura::start(b);
        let admin = k.token("admin", "admin");
        k.add_user("alice", "alice-pw-123");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let before = verifications(&k, &admin);
        for i in 0..20 {
            let r = k.req("GET", "/alice/app.git/info/refs?service=git-upload-pack").basic("alice", "alice-pw-123").send();
            assert_eq!(r.status, 200, "sign-in {i}: {}", r.describe());
        }
        assert_eq!(verifications(&k, &admin) - before, 1, "twenty sign-ins, one verification");
        k.cli_ok_stdin(&["user", "passwd", "alice", "--password-stdin"], "another-pw-456\n");
        let r = k.req("GET", "/alice/app.git/info/refs?service=git-upload-pack").basic("alice", "alice-pw-123").send();
        assert_eq!(r.status, 401, "the old password after a change: {}", r.describe());
        let r = k.req("GET", "/alice/app.git/info/refs?service=git-upload-pack").basic("alice", "another-pw-456").send();
        assert_eq!(r.status, 200, "the new password: {}", r.describe());
    }
}

/// git children of `pid` (their `comm` is `git`).
fn git_children(pid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // "PID (COMM) STATE PPID ..."
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            let ppid = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok());
            comm.ends_with("(git") && ppid == Some(pid)
        })
        .count()
}

/// A request whose headers announce a large body, with a few bytes of it, then silence.
fn stalled_post(
    k: &Kura,
    path: &str,
    service: &str,
    auth: Option<(&str, &str)>,
) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(k.addr()).expect("connect");
    let auth = auth
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                base64(format!("{u}:{p}").as_bytes())
            )
        })
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-git-{service}-request\r\n{auth}Content-Length: 10000000\r\n\r\n00",
        k.addr()
    );
    s.write_all(head.as_bytes()).expect("send");
    s
}

/// Stalled clones, with the pack cache (which reads a clone request before git starts) or
/// without (git is started and its supervisor cuts it off).
fn stalled_clones(b: Backend, cache: bool) {
    let k = Kura::builder(b)
        .env("KURA_PACK_CACHE_SIZE", if cache { "1GiB" } else { "0" })
        .env("KURA_GIT_MAX_PROCESSES", "6")
        .env("KURA_GIT_MAX_PROCESSES_PER_REPO", "3")
        .env("KURA_GIT_QUEUE_WAIT", "1s")
        .env("KURA_GIT_IDLE_TIMEOUT", "3s")
        .start();
    let alice = k.user_with_token("alice");
    k.cli_ok(&["repo", "create", "alice/pub", "--public"]);
    k.cli_ok(&["repo", "create", "alice/app"]);
    for repo in ["alice/pub", "alice/app"] {
        let dir = k.init_repo(
            repo.replace('/', "-").as_str(),
            &k.url_auth("alice", &alice, &format!("{repo}.git")),
        );
        k.commit(&dir, "a.txt", "1\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
    }
    let conns: Vec<_> = (0..40)
        .map(|_| stalled_post(&k, "/alice/pub.git/git-upload-pack", "upload-pack", None))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let running = git_children(k.pid());
    assert!(
        running <= 3,
        "{running} git children for one repository (limit 3)"
    );
    if cache {
        // The pack cache reads a clone request before git starts: stalled ones start none.
        assert_eq!(
            running, 0,
            "git children for requests whose body never came"
        );
    }
    // another repository is served while the stalls last
    let t = std::time::Instant::now();
    k.git(
        &k.work,
        &[
            "clone",
            "-q",
            &k.url_auth("alice", &alice, "alice/app.git"),
            "bystander",
        ],
    )
    .assert_ok();
    println!(
        "abuse: bystander clone during 40 stalled clones: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // the idle timeout ends the stalled children
    wait_until(
        std::time::Duration::from_secs(20),
        "the stalled git children killed",
        || git_children(k.pid()) == 0,
    );
    let why = if cache {
        "the request body stalled"
    } else {
        "git request stopped"
    };
    wait_until(
        std::time::Duration::from_secs(20),
        "the stalled requests cut off",
        || k.logs().contains(why),
    );
    assert_contains(&k.logs(), why, "the log says why");
    drop(conns);
    let r = k
        .req("GET", "/alice/pub.git/info/refs?service=git-upload-pack")
        .send();
    assert_eq!(r.status, 200, "served again: {}", r.describe());
    let peak_mb = rss_kb_peak(k.pid()) / 1024;
    println!("abuse: 40 stalled clones: Kura peak RSS {peak_mb} MB");
    assert!(
        peak_mb < 200,
        "Kura's peak RSS {peak_mb} MB under 40 stalled clones"
    );
}

both! {
    /// Stalled clones hold at most the repository's git slots, queued ones get 503 after the
    /// queue wait, the idle timeout kills the stalled children, and other repositories are
    /// served meanwhile.
    fn stalled_clones_are_bounded_and_cut_off(b: Backend) {
        stalled_clones(b, false);
        stalled_clones(b, true);
    }
    /// A writer who sends two bytes and waits no longer blocks every other push to the
    /// repository: the idle timeout stops the stalled push and releases its lock.
    fn a_stalled_push_releases_the_repository(b: Backend) {
        let k = Kura::builder(b).env("KURA_GIT_IDLE_TIMEOUT", "3s").start();
        let alice = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let dir = k.init_repo("w", &k.url_auth("alice", &alice, "alice/app.git"));
        k.commit(&dir, "a.txt", "1\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let stalled = stalled_post(&k, "/alice/app.git/git-receive-pack", "receive-pack", Some(("alice", &alice)));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let c2 = k.commit(&dir, "a.txt", "2\n", "two");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        assert_eq!(k.remote_ref(&k.url_auth("alice", &alice, "alice/app.git"), "refs/heads/main"), Some(c2));
        drop(stalled);
    }
}

both! {
    /// Half-sent requests and idle keep-alive connections are closed after the header timeout;
    /// beyond `max_connections` a new connection gets a quick 503; then service resumes.
    fn connections_are_bounded_and_timed_out(b: Backend) {
        use std::io::{Read, Write};
        let k = Kura::builder(b)
            .env("KURA_HTTP_HEADER_TIMEOUT", "2s")
            .env("KURA_MAX_CONNECTIONS", "30")
            .start();
        let connect = || {
            let s = std::net::TcpStream::connect(k.addr()).expect("connect");
            s.set_read_timeout(Some(std::time::Duration::from_secs(15))).expect("timeout");
            s
        };
        let mut half: Vec<_> = (0..30)
            .map(|_| {
                let mut s = connect();
                s.write_all(b"GET /heal").expect("half a request line");
                s
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let r = k.req("GET", "/healthz").try_send().expect("an answer, not a reset");
        assert_eq!(r.status, 503, "beyond the connection limit: {}", r.describe());
        assert!(r.header("retry-after").is_some(), "{}", r.describe());
        for (i, s) in half.iter_mut().enumerate() {
            let mut buf = [0u8; 512];
            let closed = match s.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => String::from_utf8_lossy(&buf[..n]).contains(" 408 "),
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            };
            assert!(closed, "half-sent request {i} was not closed by the server");
        }
        assert_eq!(k.get("/healthz").status, 200, "served again");
        assert_contains(&k.logs(), "open-files limit", "the start-up log names the open-files limit");
        let peak_mb = rss_kb_peak(k.pid()) / 1024;
        println!("abuse: connections full: Kura peak RSS {peak_mb} MB");
        assert!(peak_mb < 200, "Kura's peak RSS {peak_mb} MB with its connections full");
        // an idle keep-alive connection is closed as well
        let mut idle = connect();
        std::thread::sleep(std::time::Duration::from_millis(3500));
        let _ = idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: kura\r\n\r\n");
        let mut buf = [0u8; 512];
        let answer = idle.read(&mut buf).map(|n| String::from_utf8_lossy(&buf[..n]).to_string());
        assert!(
            answer.as_ref().map_or(true, |a| !a.contains("200 OK")),
            "an idle connection was kept past the timeout: {answer:?}"
        );
    }
}

both! {
    /// A pusher who goes away in the middle of the pack leaves no git process, no quarantine
    /// and no push-log note behind, and the repository as it was.
    fn client_gone_mid_push_leaves_nothing_behind(b: Backend) {
        use std::io::Write;
        let k = Kura::start(b);
        let (tok, url, dir) = k.alice_app();
        let c1 = k.commit(&dir, "a.txt", "1\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let mut s = std::net::TcpStream::connect(k.addr()).expect("connect");
        let cmdline = format!("{c1} {} refs/heads/main\0report-status side-band-64k\n", "1".repeat(40));
        let mut body = format!("{:04x}{cmdline}0000", cmdline.len() + 4).into_bytes();
        body.extend_from_slice(b"PACK\0\0\0\x02\0\0\0\x05");
        body.extend(std::iter::repeat_n(0x78u8, 4000));
        let head = format!(
            "POST /alice/app.git/git-receive-pack HTTP/1.1\r\nHost: kura\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/x-git-receive-pack-request\r\nContent-Length: 10000000\r\n\r\n",
            base64(format!("alice:{tok}").as_bytes())
        );
        s.write_all(head.as_bytes()).expect("send head");
        s.write_all(&body).expect("send part of the pack");
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(s);
        wait_until(std::time::Duration::from_secs(15), "no git child left", || git_children(k.pid()) == 0);
        let leftovers = |dir: &std::path::Path| -> Vec<String> {
            tree_snapshot(dir, &[])
                .into_iter()
                .map(|(p, _)| p.display().to_string())
                .filter(|p| p.contains("tmp_objdir") || p.contains("/tmp/push-") || p.contains("incoming-"))
                .collect()
        };
        wait_until(std::time::Duration::from_secs(10), "no quarantine or note left", || {
            leftovers(&k.data_dir).is_empty()
        });
        assert_eq!(k.remote_ref(&url, "refs/heads/main").as_deref(), Some(c1.as_str()));
        let c2 = k.commit(&dir, "a.txt", "2\n", "two");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        assert_eq!(k.remote_ref(&url, "refs/heads/main").as_deref(), Some(c2.as_str()));
    }
}
