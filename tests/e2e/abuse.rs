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
                let out = k2.git(&k2.work, &["clone", "-q", &k2.url_auth("bob", &bob, "bob/app.git"), "bystander"]);
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
