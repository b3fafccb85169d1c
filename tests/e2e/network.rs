//! Sign-in throttling, allowed CIDRs, X-Forwarded-For from trusted proxies.

use crate::harness::*;

const INFO_REFS: &str = "/alice/app.git/info/refs?service=git-upload-pack";

both! {
    fn auth_throttling(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_AUTH_MAX_FAILURES", "3")
            .env("KURA_AUTH_FAILURE_WINDOW", "60s")
            .start();
        let pw = "alice-good-password";
        k.add_user("alice", pw);
        k.add_user("bob", "bob-good-password");
        k.cli_ok(&["repo", "create", "alice/app"]);
        k.cli_ok(&["repo", "create", "bob/app"]);

        // requests without credentials never count
        for i in 0..12 {
            let r = k.get(INFO_REFS);
            assert_eq!(r.status, 401, "anonymous request {i}: {}", r.describe());
        }
        let r = k.req("GET", INFO_REFS).basic("alice", pw).send();
        assert_eq!(r.status, 200, "anonymous requests must not count as failures: {}", r.describe());

        // three failures...
        for i in 0..3 {
            let r = k.req("GET", INFO_REFS).basic("alice", &format!("wrong-{i}")).send();
            assert_eq!(r.status, 401, "wrong password {i}: {}", r.describe());
            assert_contains(&r.text(), "wrong user name or password", "wrong password body");
        }
        // ...then even the right password is refused for a while
        let r = k.req("GET", INFO_REFS).basic("alice", pw).send();
        assert_eq!(r.status, 429, "4th sign-in after 3 failures: {}", r.describe());
        let retry = r.header("retry-after").unwrap_or_else(|| panic!("429 without Retry-After: {}", r.describe()));
        let secs: u64 = retry.trim().parse().unwrap_or_else(|_| panic!("Retry-After is not a number of seconds: {retry:?}"));
        assert!((1..=60).contains(&secs), "Retry-After {secs} should be within the 60 s window");
        // per address: another user from the same address is throttled too
        let r = k.req("GET", "/bob/app.git/info/refs?service=git-upload-pack").basic("bob", "bob-good-password").send();
        assert_eq!(r.status, 429, "same address, other user: {}", r.describe());
        assert!(r.header("retry-after").is_some());
        // git sees the refusal too
        let out = k.git(&k.work, &["ls-remote", &k.url_auth("alice", pw, "alice/app.git")]).assert_err();
        assert!(out.stderr.contains("429") || out.stderr.to_lowercase().contains("too many"), "git under throttling:\n{}", out.stderr);

        // health endpoints are unaffected
        assert_eq!(k.get("/healthz").status, 200);
        let logs = k.logs();
        assert!(!logs.contains(pw), "log contains a password");
        assert!(!logs.contains("wrong-1"), "log contains a (wrong) password");
    }

    fn allowed_cidrs(b: Backend) {
        let k = Kura::builder(b).env("KURA_ALLOWED_CIDRS", "10.0.0.0/8").start();
        let pw = "alice-good-password";
        k.add_user("alice", pw);
        k.cli_ok(&["repo", "create", "alice/app"]);

        let r = k.req("GET", INFO_REFS).basic("alice", pw).send();
        assert_eq!(r.status, 403, "127.0.0.1 is outside 10.0.0.0/8: {}", r.describe());
        assert_contains(&r.text(), "not allowed", "403 body");
        let r = k.get(INFO_REFS);
        assert_eq!(r.status, 403, "anonymous from a refused address: {}", r.describe());
        let r = k.req("GET", "/api/v1/user").basic("alice", pw).send();
        assert_eq!(r.status, 403, "the API is covered as well: {}", r.describe());
        // X-Forwarded-For from a peer that is not a trusted proxy is ignored
        let r = k.req("GET", INFO_REFS).basic("alice", pw).header("X-Forwarded-For", "10.1.2.3").send();
        assert_eq!(r.status, 403, "X-Forwarded-For from an untrusted peer must be ignored: {}", r.describe());
        let out = k.git(&k.work, &["ls-remote", &k.url_auth("alice", pw, "alice/app.git")]).assert_err();
        assert_contains(&out.stderr, "not allowed", "git from a refused address");
        // the load balancer can still probe
        assert_eq!(k.get("/healthz").status, 200, "/healthz is exempt from allowed_cidrs");
        let rz = k.get("/readyz");
        assert_eq!(rz.status, 200, "/readyz is exempt from allowed_cidrs: {}", rz.describe());
    }

    fn forwarded_for_trusted_proxy(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_ALLOWED_CIDRS", "10.0.0.0/8")
            .env("KURA_TRUSTED_PROXIES", "127.0.0.1/32")
            .start();
        let tok = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);

        let r = k.req("GET", INFO_REFS).basic("alice", &tok).header("X-Forwarded-For", "10.1.2.3").send();
        assert_eq!(r.status, 200, "client 10.1.2.3 via a trusted proxy: {}", r.describe());
        let r = k.req("GET", INFO_REFS).basic("alice", &tok).send();
        assert_eq!(r.status, 403, "the proxy itself is not an allowed client: {}", r.describe());
        let r = k.req("GET", INFO_REFS).basic("alice", &tok).header("X-Forwarded-For", "192.168.7.7").send();
        assert_eq!(r.status, 403, "client 192.168.7.7 via a trusted proxy: {}", r.describe());

        // git through the "proxy": clone and push with the header
        let xff = "http.extraHeader=X-Forwarded-For: 10.9.8.7";
        let url = k.url_auth("alice", &tok, "alice/app.git");
        k.git_ok(&k.work, &["-c", xff, "clone", "-q", &url, "c"]);
        let dir = k.work.join("c");
        let c1 = k.commit(&dir, "a.txt", "a\n", "via proxy");
        k.git_ok(&dir, &["-c", xff, "push", "-q", "origin", "HEAD:main"]);
        let ls = k.git_ok(&k.work, &["-c", xff, "ls-remote", &url]);
        assert_contains(&ls, &c1, "ls-remote through the trusted proxy");
        k.git(&k.work, &["ls-remote", &url]).assert_err();
    }

    /// With no trusted proxies, a forged X-Forwarded-For cannot lock out an allowed peer.
    fn forwarded_for_ignored_without_trusted_proxies(b: Backend) {
        let k = Kura::builder(b).env("KURA_ALLOWED_CIDRS", "127.0.0.0/8").start();
        let tok = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let r = k.req("GET", INFO_REFS).basic("alice", &tok).header("X-Forwarded-For", "10.1.2.3").send();
        assert_eq!(r.status, 200, "forged X-Forwarded-For from 127.0.0.1 must be ignored: {}", r.describe());
        let r = k.req("GET", INFO_REFS).basic("alice", &tok).send();
        assert_eq!(r.status, 200, "{}", r.describe());
    }

    /// Behind a trusted proxy, failures count per forwarded client address and per user name
    /// (with a higher ceiling): one client's failures lock out neither the others nor the user.
    fn throttling_behind_trusted_proxy(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_AUTH_MAX_FAILURES", "3")
            .env("KURA_AUTH_MAX_FAILURES_PER_USER", "6")
            .env("KURA_AUTH_FAILURE_WINDOW", "60s")
            .env("KURA_TRUSTED_PROXIES", "127.0.0.1/32")
            .start();
        for u in ["alice", "bob", "carol"] {
            k.add_user(u, &format!("{u}-good-password"));
            k.cli_ok(&["repo", "create", &format!("{u}/app")]);
        }
        let via = |ip: &str, user: &str, pw: &str, repo: &str| {
            k.req("GET", &format!("/{repo}.git/info/refs?service=git-upload-pack"))
                .basic(user, pw)
                .header("X-Forwarded-For", ip)
                .send()
        };
        // per address: one client guesses three different user names
        for i in 0..3 {
            let r = via("10.0.0.1", &format!("ghost{i}"), "guess", "alice/app");
            assert_eq!(r.status, 401, "{}", r.describe());
        }
        let r = via("10.0.0.1", "bob", "bob-good-password", "bob/app");
        assert_eq!(r.status, 429, "client 10.0.0.1 after 3 failures: {}", r.describe());
        assert!(r.header("retry-after").is_some(), "{}", r.describe());
        let r = via("10.0.0.2", "bob", "bob-good-password", "bob/app");
        assert_eq!(r.status, 200, "another client behind the same proxy is not throttled: {}", r.describe());
        // one address guessing alice's password locks that address, not alice everywhere
        for _ in 0..3 {
            let r = via("10.0.1.1", "alice", "guess", "alice/app");
            assert_eq!(r.status, 401, "{}", r.describe());
        }
        let r = via("10.0.1.1", "alice", "alice-good-password", "alice/app");
        assert_eq!(r.status, 429, "the guessing address: {}", r.describe());
        let r = via("10.0.1.2", "alice", "alice-good-password", "alice/app");
        assert_eq!(r.status, 200, "alice from her own address: {}", r.describe());
        // per user name, a higher ceiling (6 here): alice's password guessed from six addresses
        for i in 0..6 {
            let r = via(&format!("10.0.2.{i}"), "alice", "guess", "alice/app");
            assert_eq!(r.status, 401, "{}", r.describe());
        }
        let r = via("10.0.3.1", "alice", "alice-good-password", "alice/app");
        assert_eq!(r.status, 429, "user alice after 6 failures from 6 addresses: {}", r.describe());
        let r = via("10.0.3.1", "carol", "carol-good-password", "carol/app");
        assert_eq!(r.status, 200, "carol from a fresh address: {}", r.describe());
    }

    /// Failures older than the window no longer count.
    fn throttling_window_passes(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_AUTH_MAX_FAILURES", "3")
            .env("KURA_AUTH_FAILURE_WINDOW", "2s")
            .start();
        let pw = "alice-good-password";
        k.add_user("alice", pw);
        k.cli_ok(&["repo", "create", "alice/app"]);
        for _ in 0..3 {
            assert_eq!(k.req("GET", INFO_REFS).basic("alice", "wrong").send().status, 401);
        }
        let r = k.req("GET", INFO_REFS).basic("alice", pw).send();
        assert_eq!(r.status, 429, "{}", r.describe());
        let retry: u64 = r.header("retry-after").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        assert!((1..=2).contains(&retry), "Retry-After within a 2 s window: {}", r.describe());
        std::thread::sleep(std::time::Duration::from_millis(2600));
        let r = k.req("GET", INFO_REFS).basic("alice", pw).send();
        assert_eq!(r.status, 200, "after the window: {}", r.describe());
    }
}
