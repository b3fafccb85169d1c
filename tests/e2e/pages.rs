//! The browser pages over raw HTTP: sign-in, sessions and CSRF, the same refusals as git
//! (a hidden repository looks missing), escaping, raw files that cannot script, archives and
//! refs with slashes. The real-browser walk-through is in `browser.rs`.

use crate::harness::*;

/// alice owns a private and a public repository with a small history; bob has no role.
fn setup(k: &Kura) -> (String, String) {
    k.add_user("alice", "alice-pass-123");
    k.add_user("bob", "bob-pass-1234");
    let tok = k.token("alice", "write");
    k.cli_ok(&["repo", "create", "alice/secret"]);
    k.cli_ok(&["repo", "create", "alice/open", "--public"]);
    let dir = k.init_repo("w", &k.url_auth("alice", &tok, "alice/secret.git"));
    k.commit(
        &dir,
        "README.md",
        "# Secret\n\nSee [the guide](docs/guide.md).\n\n<script>alert(1)</script>\n",
        "first",
    );
    k.commit(&dir, "docs/guide.md", "guide\n", "guide");
    k.commit(
        &dir,
        "src/main.rs",
        "fn main() {\n    println!(\"needle_word\");\n}\n",
        "Add <b onmouseover=alert(1)>main</b>",
    );
    k.commit(&dir, "evil.html", "<script>alert('x')</script>\n", "html");
    k.commit(
        &dir,
        "evil.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>\n",
        "svg",
    );
    k.commit(&dir, "<img src=x onerror=alert(1)>.md", "x\n", "named");
    let head = k.commit(
        &dir,
        "src/main.rs",
        "fn main() {\n    println!(\"needle_word 2\");\n}\n",
        "second",
    );
    k.git_ok(&dir, &["push", "-q", "origin", "main"]);
    k.git_ok(
        &dir,
        &[
            "push",
            "-q",
            "origin",
            "main:refs/heads/release/1.0",
            "main:refs/heads/x<svg>",
        ],
    );
    k.git_ok(
        &dir,
        &[
            "push",
            "-q",
            &k.url_auth("alice", &tok, "alice/open.git"),
            "main",
            "main:refs/heads/release/1.0",
        ],
    );
    (tok, head)
}

both! {
    fn hidden_repositories_look_missing(b: Backend) {
        let k = Kura::start(b);
        let (_, head) = setup(&k);
        let pages = |repo: &str| -> Vec<String> {
            ["", "/tree/main", "/tree/main/src", "/blob/main/src/main.rs", "/raw/main/src/main.rs",
             "/blame/main/src/main.rs", "/commits/main", "/commits/main/src", "/branches", "/tags",
             "/archive/main.tar.gz", "/search?q=needle_word"]
                .iter().map(|p| format!("/alice/{repo}{p}"))
                .chain([format!("/alice/{repo}/commit/{head}"), format!("/alice/{repo}/compare/release/1.0...main")])
                .collect()
        };
        // Anonymous: the public repository reads, the private one is the 404 of a missing one.
        let mut anon = Browser::new(&k);
        let missing = anon.get("/alice/nothing");
        assert_eq!(missing.status, 404, "{}", missing.describe());
        for p in pages("open") {
            let r = anon.get(&p);
            assert_eq!(r.status, 200, "anonymous {p}: {}", r.describe());
        }
        for p in pages("secret") {
            let r = anon.get(&p);
            assert_eq!(r.status, 404, "anonymous {p}: {}", r.describe());
            assert!(!r.text().contains("needle_word"), "{p} leaked content");
        }
        assert_eq!(error_text(&anon.get("/alice/secret").text()), error_text(&missing.text()), "hidden and missing differ for anonymous");
        let home = anon.get("/").text();
        assert_contains(&home, "alice/open", "anonymous home");
        assert!(!home.contains("alice/secret"), "anonymous home lists the private repository:\n{home}");

        // bob (no role) sees the same as a missing repository; alice reads everything.
        let mut bob = Browser::new(&k);
        let r = bob.sign_in("bob", "bob-pass-1234");
        assert_eq!(r.status, 303, "{}", r.describe());
        let bob_missing = error_text(&bob.get("/alice/nothing").text());
        for p in pages("secret") {
            let r = bob.get(&p);
            assert_eq!(r.status, 404, "bob {p}: {}", r.describe());
        }
        assert_eq!(error_text(&bob.get("/alice/secret").text()), bob_missing, "hidden and missing differ for bob");
        assert!(!bob.get("/").text().contains("alice/secret"), "bob's home lists the private repository");
        let mut alice = Browser::new(&k);
        alice.sign_in("alice", "alice-pass-123");
        for p in pages("secret") {
            let r = alice.get(&p);
            assert_eq!(r.status, 200, "alice {p}: {}", r.describe());
        }
        // A grant opens it to bob at once (his session is unchanged).
        k.cli_ok(&["grant", "alice/secret", "bob", "--role", "read"]);
        assert_eq!(bob.get("/alice/secret/blob/main/src/main.rs").status, 200);
        // A token works without a session (scripts), and never for forms.
        let tok = k.token("alice", "read");
        let r = k.req("GET", "/alice/secret/commits/main").bearer(&tok).send();
        assert_eq!(r.status, 200, "{}", r.describe());
        let r = k.req("POST", "/settings/tokens").bearer(&tok).header("Content-Type", "application/x-www-form-urlencoded").body("scope=admin").send();
        assert_eq!(r.status, 403, "a token-only visitor submitted a form: {}", r.describe());
    }

    fn sessions_sign_in_and_csrf(b: Backend) {
        let k = Kura::start(b);
        setup(&k);
        let mut br = Browser::new(&k);
        // The sign-in form without its cookie, and a wrong password: refused, no session.
        let r = br.post("/login", &[("csrf", "forged"), ("user", "alice"), ("password", "alice-pass-123")]);
        assert_eq!(r.status, 403, "{}", r.describe());
        assert!(br.session().is_none());
        let tok = k.token("alice", "read");
        let r = br.sign_in("alice", &tok);
        assert_eq!(r.status, 400, "a token is not a password here: {}", r.describe());
        assert_contains(&r.text(), "That is an access token", "token refusal");
        let r = br.sign_in("alice", "wrong-password");
        assert_eq!(r.status, 401, "{}", r.describe());
        assert_contains(&r.text(), "wrong user name or password", "wrong password page");
        assert!(br.session().is_none());
        // The right one: a session cookie that scripts cannot read and other sites do not send.
        let r = br.sign_in("alice", "alice-pass-123");
        assert_eq!(r.status, 303, "{}", r.describe());
        let cookie = set_cookies(&r).into_iter().find(|c| c.starts_with("kura_session=")).expect("a session cookie");
        assert_contains(&cookie, "HttpOnly", "cookie flags");
        assert_contains(&cookie, "SameSite=Lax", "cookie flags");
        assert!(!cookie.contains("Secure"), "Secure without https public_url: {cookie}");
        let first = br.session().expect("session");
        // A new sign-in rotates the session; the old secret no longer works.
        br.sign_in("alice", "alice-pass-123");
        let second = br.session().expect("session");
        assert_ne!(first, second, "session not rotated");
        let r = k.req("GET", "/settings").header("Cookie", &format!("kura_session={first}")).send();
        assert_eq!(r.status, 303, "the old session still works: {}", r.describe());

        // Forms need the session's token.
        let r = br.post("/settings/tokens", &[("scope", "read"), ("csrf", "nope")]);
        assert_eq!(r.status, 403, "{}", r.describe());
        assert_contains(&r.text(), "Form expired", "csrf refusal page");
        let csrf = br.csrf();
        let r = br.post("/settings/tokens", &[("csrf", &csrf), ("name", "ci"), ("scope", "read"), ("expires_in", "30 days")]);
        assert_eq!(r.status, 200, "{}", r.describe());
        let html = r.text();
        let marker = "id=\"new-token-value\">";
        let at = html.find(marker).expect("the new token is shown");
        let token = html[at + marker.len()..].split('<').next().unwrap_or("").to_string();
        assert!(token.starts_with("kura_"), "{token}");
        let ls = k.git_ok(&k.work, &["ls-remote", &k.url_auth("alice", &token, "alice/secret.git")]);
        assert_contains(&ls, "refs/heads/main", "the new token clones");
        let r = br.post("/settings/tokens", &[("csrf", &csrf), ("scope", "read"), ("expires_in", "-5")]);
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_contains(&r.text(), "is negative: a duration is 0s or longer", "bad expiry");
        // Someone else's token cannot be revoked from here (and looks missing).
        let bob_tok = k.token("bob", "read");
        let bob_id = k.cli_ok(&["token", "list", "bob"]).lines().find_map(|l| l.split_whitespace().next().and_then(|w| w.parse::<i64>().ok())).expect("bob's token id");
        let r = br.post(&format!("/settings/tokens/{bob_id}/revoke"), &[("csrf", &csrf)]);
        assert_eq!(r.status, 404, "{}", r.describe());
        let r = k.req("GET", "/api/v1/user").bearer(&bob_tok).send();
        assert_eq!(r.status, 200, "bob's token survived: {}", r.describe());

        // A password change ends the other sessions and keeps this browser signed in.
        let mut other = Browser::new(&k);
        other.sign_in("alice", "alice-pass-123");
        assert_eq!(other.get("/settings").status, 200);
        let r = br.post("/settings/password", &[("csrf", &csrf), ("current", "wrong"), ("new", "new-pass-4567")]);
        assert_eq!(r.status, 400, "{}", r.describe());
        let r = br.post("/settings/password", &[("csrf", &csrf), ("current", "alice-pass-123"), ("new", "new-pass-4567")]);
        assert_eq!(r.status, 303, "{}", r.describe());
        assert_eq!(br.get("/settings").status, 200, "this browser was signed out");
        assert_eq!(other.get("/settings").status, 303, "the other browser is still signed in");
        // Disabling the account ends its sessions.
        k.cli_ok(&["user", "disable", "alice"]);
        assert_eq!(br.get("/settings").status, 303, "a disabled user is still signed in");
        k.cli_ok(&["user", "enable", "alice"]);
        // Sign-out ends the session on the server too.
        br.sign_in("alice", "new-pass-4567");
        let s = br.session().expect("session");
        let csrf = br.csrf();
        let r = br.post("/logout", &[("csrf", &csrf)]);
        assert_eq!(r.status, 303, "{}", r.describe());
        assert!(br.session().is_none(), "cookie not cleared");
        let r = k.req("GET", "/settings").header("Cookie", &format!("kura_session={s}")).send();
        assert_eq!(r.status, 303, "the session outlived sign-out");
        // Sign-in counts toward the same throttle as git.
        let mut guesser = Browser::new(&k);
        let mut last = 0;
        for _ in 0..12 {
            last = guesser.sign_in("bob", "not-his-password").status;
        }
        assert_eq!(last, 429, "sign-in not throttled");
    }

    fn pages_cannot_run_repository_content(b: Backend) {
        let k = Kura::start(b);
        setup(&k);
        let mut br = Browser::new(&k);
        br.sign_in("alice", "alice-pass-123");
        let r = br.get("/alice/secret");
        let csp = r.header("content-security-policy").unwrap_or("").to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        let html = norm(&r.text());
        assert!(!html.contains("<script>alert"), "README script not escaped");
        assert_contains(&html, "&lt;script&gt;alert(1)&lt;/script&gt;", "README script shown as text");
        assert_contains(&html, "href=\"/alice/secret/blob/main/docs/guide.md\"", "relative link");
        assert_contains(&html, "&lt;img src=x onerror=alert(1)&gt;.md", "file name escaped");
        assert!(!html.contains("<img src=x"), "file name not escaped");
        let log = norm(&br.get("/alice/secret/commits/main").text());
        assert_contains(&log, "Add &lt;b onmouseover=alert(1)&gt;main&lt;/b&gt;", "commit title escaped");
        let branches = norm(&br.get("/alice/secret/branches").text());
        assert_contains(&branches, "x&lt;svg&gt;", "branch name escaped");
        assert!(!branches.contains("x<svg>"), "branch name not escaped");
        for (path, ty) in [("evil.html", "text/plain"), ("evil.svg", "image/svg+xml")] {
            let r = br.get(&format!("/alice/secret/raw/main/{path}"));
            assert_eq!(r.status, 200, "{}", r.describe());
            assert!(r.header("content-type").unwrap_or("").starts_with(ty), "{}", r.describe());
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
            assert!(r.header("content-security-policy").unwrap_or("").contains("sandbox"), "{}", r.describe());
        }
        let r = br.get("/alice/secret/raw/main/src/main.rs?download=1");
        assert!(r.header("content-disposition").unwrap_or("").starts_with("attachment"), "{}", r.describe());
        // A sign-in never sends the browser off-site afterwards (`/\t/host` is `//host` to a browser).
        for next in ["//evil.example/x", "/%09/evil.example", "/%5C/evil.example", "https://evil.example"] {
            let r = br.get(&format!("/login?next={next}"));
            assert_eq!(r.status, 303, "already signed in goes to next: {}", r.describe());
            assert_eq!(r.header("location"), Some("/"), "next={next}");
        }
        // Signing out asks the browser to drop cached pages.
        let mut other = Browser::new(&k);
        other.sign_in("alice", "alice-pass-123");
        let csrf = other.csrf();
        let out = other.post("/logout", &[("csrf", &csrf)]);
        assert_eq!(out.header("clear-site-data"), Some("\"cache\""), "{}", out.describe());
    }

    fn code_history_refs_and_archives(b: Backend) {
        let k = Kura::start(b);
        let (_, head) = setup(&k);
        let mut br = Browser::new(&k);
        br.sign_in("alice", "alice-pass-123");
        // A folder page shows the folder's README, links resolved from that folder.
        let root = br.get("/alice/secret/tree/release/1.0").text();
        assert_contains(&root, "id=\"readme\"", "README under the files");
        assert_contains(&root, "href=\"/alice/secret/blob/release/1.0/docs/guide.md\"", "README link at the ref shown");
        // A ref with a slash resolves by the longest matching ref.
        let r = br.get("/alice/secret/tree/release/1.0/src");
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_contains(&r.text(), "main.rs", "folder of release/1.0");
        let blob = br.get("/alice/secret/blob/release/1.0/src/main.rs").text();
        assert_contains(&blob, "id=\"L2\"", "line anchors");
        assert_contains(&blob, "needle_word 2", "file content");
        assert_contains(&blob, "<span class=\"k\">", "highlighting");
        assert_eq!(br.get("/alice/secret/blob/main/nope.txt").status, 404);
        assert_eq!(br.get("/alice/secret/tree/no-such-branch").status, 404);
        // History per path, one commit, and its diff.
        let log = br.get("/alice/secret/commits/main/src/main.rs").text();
        assert_eq!(log.matches("class=\"commit\"").count(), 2, "two commits touch src/main.rs:\n{log}");
        let c = br.get(&format!("/alice/secret/commit/{head}"));
        assert_eq!(c.status, 200, "{}", c.describe());
        // Pages carry the visitor's name and form token: the browser revalidates them.
        let cc = c.header("cache-control").unwrap_or("").to_string();
        assert!(cc.contains("private") && cc.contains("no-cache") && !cc.contains("immutable"), "{cc}");
        let c = c.text();
        assert_contains(&c, "class=\"del\"", "removed line");
        assert_contains(&c, "class=\"add\"", "added line");
        assert_contains(&c, "needle_word 2", "diff text");
        // An abbreviated id goes to the full one.
        let r = br.get(&format!("/alice/secret/commit/{}", &head[..10]));
        assert_eq!(r.status, 303, "{}", r.describe());
        let blame = br.get("/alice/secret/blame/main/src/main.rs").text();
        assert_contains(&blame, "second", "blame names the commit of line 2");
        // Search: content and file names.
        let s = br.get("/alice/secret/search?q=NEEDLE_WORD").text();
        assert_contains(&s, "<mark>needle_word</mark>", "highlighted match");
        assert_contains(&s, "/alice/secret/blob/main/src/main.rs#L2", "link to the line");
        let s = br.get("/alice/secret/search?q=guide").text();
        assert_contains(&s, "id=\"file-results\"", "go to file");
        // Archives: every file under NAME-REF/.
        for (ext, list) in [("tar.gz", vec!["tar", "tzf"]), ("zip", vec!["python3", "-m", "zipfile", "-l"])] {
            let r = br.get(&format!("/alice/secret/archive/release/1.0.{ext}"));
            assert_eq!(r.status, 200, "{}", r.describe());
            let file = k.work.join(format!("a.{ext}"));
            std::fs::write(&file, &r.body).expect("write archive");
            let out = std::process::Command::new(list[0]).args(&list[1..]).arg(&file).output().expect("list archive");
            let names = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{ext}: {}", String::from_utf8_lossy(&out.stderr));
            assert_contains(&names, "secret-release-1.0/src/main.rs", ext);
            assert_contains(&names, "secret-release-1.0/docs/guide.md", ext);
        }
        assert_eq!(br.get("/alice/secret/archive/main.rar").status, 400);
        // A namespace alone lists its repositories.
        let r = br.get("/alice");
        assert_eq!(r.status, 303, "{}", r.describe());
        let list = br.get(r.header("location").unwrap_or("/")).text();
        assert_contains(&list, "alice/secret", "the namespace's repositories");
        // An empty repository tells how to push.
        k.cli_ok(&["repo", "create", "alice/empty"]);
        let e = br.get("/alice/empty").text();
        assert_contains(&e, "git push -u origin", "push instructions");
    }
}

/// Behind an https `public_url` (a TLS-terminating load balancer), cookies are `Secure` and the
/// clone URL uses the public address.
#[test]
fn https_public_url_makes_cookies_secure() {
    let k = Kura::builder(Backend::Sqlite)
        .env("KURA_PUBLIC_URL", "https://git.corp.example")
        .start();
    setup(&k);
    let mut br = Browser::new(&k);
    let form = br.get("/login");
    assert!(
        set_cookies(&form)
            .iter()
            .any(|c| c.starts_with("kura_login=") && c.contains("Secure")),
        "{}",
        form.describe()
    );
    let r = br.sign_in("alice", "alice-pass-123");
    let cookie = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("kura_session="))
        .expect("a session cookie");
    assert_contains(&cookie, "Secure", "cookie over https");
    let page = br.get("/alice/secret").text();
    assert_contains(
        &page,
        "value=\"https://git.corp.example/alice/secret.git\"",
        "clone URL",
    );
}
