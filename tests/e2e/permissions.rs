//! Group roles, grants, public repositories, anonymous access, no existence leak.

use crate::harness::*;

fn info_refs(repo: &str, service: &str) -> String {
    format!("/{repo}.git/info/refs?service=git-{service}")
}

/// Asserts that a push from `dir` is refused for lack of write access.
#[track_caller]
fn assert_push_read_only(k: &Kura, dir: &std::path::Path, repo: &str) {
    let out = k.git(dir, &["push", "origin", "HEAD:main"]).assert_err();
    assert_contains(
        &out.stderr,
        "remote: you have read access",
        &format!("read-only push to {repo}"),
    );
    assert_contains(
        &out.stderr,
        &format!("you have read access to {repo} but pushing needs write"),
        "read-only push",
    );
}

both! {
    fn group_roles_and_grants(b: Backend) {
        let k = Kura::start(b);
        let alice = k.user_with_token("alice");
        let bob = k.user_with_token("bob");
        let carol = k.user_with_token("carol");
        let dave = k.user_with_token("dave");
        k.cli_ok(&["group", "add", "team"]);
        k.cli_ok(&["group", "member", "add", "team", "alice", "--role", "write"]);
        k.cli_ok(&["group", "member", "add", "team", "bob", "--role", "read"]);
        k.cli_ok(&["group", "member", "add", "team", "dave", "--role", "admin"]);
        k.cli_ok(&["repo", "create", "team/service", "--default-branch", "main"]);
        k.cli_ok(&["repo", "create", "alice/private"]);

        // alice (write) pushes
        let a = k.init_repo("a", &k.url_auth("alice", &alice, "team/service.git"));
        let c1 = k.commit(&a, "a.txt", "a\n", "first");
        k.git_ok(&a, &["push", "-q", "origin", "main"]);

        // bob (read) clones, cannot push
        let bdir = k.clone_repo(&k.url_auth("bob", &bob, "team/service.git"), "b");
        assert_eq!(k.rev(&bdir, "HEAD"), c1);
        k.commit(&bdir, "b.txt", "b\n", "bob");
        assert_push_read_only(&k, &bdir, "team/service");
        let r = k.req("GET", &info_refs("team/service", "receive-pack")).basic("bob", &bob).send();
        assert_eq!(r.status, 403, "{}", r.describe());
        assert_contains(&r.text(), "you have read access to team/service but pushing needs write", "403 body");

        // dave (group admin) pushes
        let ddir = k.clone_repo(&k.url_auth("dave", &dave, "team/service.git"), "d");
        let c2 = k.commit(&ddir, "d.txt", "d\n", "dave");
        k.git_ok(&ddir, &["push", "-q", "origin", "main"]);

        // carol (no role): exactly like a missing repository
        let hidden = k.req("GET", &info_refs("team/service", "upload-pack")).basic("carol", &carol).send();
        let missing = k.req("GET", &info_refs("team/nothing", "upload-pack")).basic("carol", &carol).send();
        assert_eq!(hidden.status, 404, "{}", hidden.describe());
        assert_contains(&hidden.text(), "repository not found", "404 body");
        assert_eq!((hidden.status, hidden.text()), (missing.status, missing.text()), "hidden vs missing must be identical");
        let out = k.git(&k.work, &["clone", &k.url_auth("carol", &carol, "team/service.git"), "c0"]).assert_err();
        assert_contains(&out.stderr, "repository not found", "git clone by a user without access");
        // nor can bob see alice's own repositories
        let r = k.req("GET", &info_refs("alice/private", "upload-pack")).basic("bob", &bob).send();
        assert_eq!((r.status, r.text()), (missing.status, missing.text()), "alice/private for bob");

        // grant read, then write, then revoke
        k.cli_ok(&["grant", "team/service", "carol", "--role", "read"]);
        let cdir = k.clone_repo(&k.url_auth("carol", &carol, "team/service.git"), "c");
        assert_eq!(k.rev(&cdir, "HEAD"), c2);
        k.commit(&cdir, "c.txt", "c\n", "carol");
        assert_push_read_only(&k, &cdir, "team/service");
        k.cli_ok(&["grant", "team/service", "carol", "--role", "write"]);
        k.git_ok(&cdir, &["push", "-q", "origin", "HEAD:main"]);
        k.cli_ok(&["revoke", "team/service", "carol"]);
        let r = k.req("GET", &info_refs("team/service", "upload-pack")).basic("carol", &carol).send();
        assert_eq!((r.status, r.text()), (missing.status, missing.text()), "after revoke");

        // group membership changes take effect
        k.cli_ok(&["group", "member", "add", "team", "bob", "--role", "write"]);
        k.git_ok(&bdir, &["pull", "-q", "--no-rebase", "origin", "main"]);
        k.git_ok(&bdir, &["push", "-q", "origin", "HEAD:main"]);
        k.cli_ok(&["group", "member", "remove", "team", "bob"]);
        let r = k.req("GET", &info_refs("team/service", "upload-pack")).basic("bob", &bob).send();
        assert_eq!((r.status, r.text()), (missing.status, missing.text()), "after member remove");
        k.git_ok(&k.work, &["clone", "-q", &k.url_auth("alice", &alice, "team/service.git"), "final"]);
        k.git_ok(&k.work.join("final"), &["fsck"]);
    }

    fn public_repositories(b: Backend) {
        let k = Kura::start(b);
        let alice = k.user_with_token("alice");
        let bob = k.user_with_token("bob");
        k.cli_ok(&["repo", "create", "alice/pub", "--public"]);
        k.cli_ok(&["repo", "create", "alice/priv"]);
        let a = k.init_repo("a", &k.url_auth("alice", &alice, "alice/pub.git"));
        let c1 = k.commit(&a, "a.txt", "a\n", "first");
        k.git_ok(&a, &["push", "-q", "origin", "main"]);

        // anonymous clone of a public repository
        let anon = k.clone_repo(&k.url("alice/pub.git"), "anon");
        assert_eq!(k.rev(&anon, "HEAD"), c1);
        // anonymous push: asked to sign in
        let r = k.get(&info_refs("alice/pub", "receive-pack"));
        assert_eq!(r.status, 401, "anonymous push to a public repository: {}", r.describe());
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Kura\""));
        k.commit(&anon, "x.txt", "x\n", "anon");
        k.git(&anon, &["push", "origin", "main"]).assert_err();
        // a signed-in stranger reads but cannot push
        let bdir = k.clone_repo(&k.url_auth("bob", &bob, "alice/pub.git"), "b");
        k.commit(&bdir, "b.txt", "b\n", "bob");
        assert_push_read_only(&k, &bdir, "alice/pub");
        assert_eq!(k.remote_ref(&k.url("alice/pub.git"), "refs/heads/main"), Some(c1));

        // anonymous on a private or a missing repository: the same challenge
        let p = k.get(&info_refs("alice/priv", "upload-pack"));
        let m = k.get(&info_refs("alice/nope", "upload-pack"));
        let n = k.get(&info_refs("nobody/nope", "upload-pack"));
        for (what, r) in [("private", &p), ("missing", &m), ("missing namespace", &n)] {
            assert_eq!(r.status, 401, "anonymous, {what}: {}", r.describe());
            assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Kura\""), "anonymous, {what}");
        }
        assert_eq!(p.text(), m.text(), "private vs missing bodies (anonymous)");
        assert_eq!(p.text(), n.text(), "private vs missing namespace bodies (anonymous)");
        let out = k.git(&k.work, &["clone", &k.url("alice/priv.git"), "x"]).assert_err();
        assert!(!out.stderr.contains("not found"), "anonymous clone of a private repo must not say 'not found':\n{}", out.stderr);
        // signed in without access: missing and hidden are identical
        let p = k.req("GET", &info_refs("alice/priv", "upload-pack")).basic("bob", &bob).send();
        let m = k.req("GET", &info_refs("alice/nope", "upload-pack")).basic("bob", &bob).send();
        let n = k.req("GET", &info_refs("nobody/nope", "upload-pack")).basic("bob", &bob).send();
        assert_eq!(p.status, 404, "{}", p.describe());
        assert_contains(&p.text(), "repository not found", "404 body");
        assert_eq!((p.status, p.text()), (m.status, m.text()), "private vs missing (signed in)");
        assert_eq!((p.status, p.text()), (n.status, n.text()), "private vs missing namespace (signed in)");
        let pr = k.req("GET", &info_refs("alice/priv", "receive-pack")).basic("bob", &bob).send();
        let mr = k.req("GET", &info_refs("alice/nope", "receive-pack")).basic("bob", &bob).send();
        assert_eq!((pr.status, pr.text()), (mr.status, mr.text()), "private vs missing (signed in, receive-pack)");
        for svc in ["git-upload-pack", "git-receive-pack"] {
            let post = |repo: &str| {
                k.req("POST", &format!("/{repo}.git/{svc}"))
                    .basic("bob", &bob)
                    .header("Content-Type", &format!("application/x-{svc}-request"))
                    .body(b"0000")
                    .send()
            };
            let (p, m) = (post("alice/priv"), post("alice/nope"));
            assert_eq!(p.status, 404, "POST {svc} on a hidden repository: {}", p.describe());
            assert_eq!((p.status, p.text()), (m.status, m.text()), "POST {svc}: private vs missing");
        }

        // a site admin (`user add --admin`) reads and writes everywhere
        k.cli_ok_stdin(&["user", "add", "root", "--admin", "--password-stdin"], "root-password-42\n");
        let r = k.req("GET", &info_refs("alice/priv", "receive-pack")).basic("root", "root-password-42").send();
        assert_eq!(r.status, 200, "site admin on alice/priv: {}", r.describe());
    }

    fn anonymous_read_disabled(b: Backend) {
        let k = Kura::builder(b).env("KURA_ALLOW_ANONYMOUS_READ", "false").start();
        let alice = k.user_with_token("alice");
        let bob = k.user_with_token("bob");
        k.cli_ok(&["repo", "create", "alice/pub", "--public"]);
        let a = k.init_repo("a", &k.url_auth("alice", &alice, "alice/pub.git"));
        let c1 = k.commit(&a, "a.txt", "a\n", "first");
        k.git_ok(&a, &["push", "-q", "origin", "main"]);

        let r = k.get(&info_refs("alice/pub", "upload-pack"));
        assert_eq!(r.status, 401, "anonymous read with KURA_ALLOW_ANONYMOUS_READ=false: {}", r.describe());
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Kura\""));
        k.git(&k.work, &["clone", &k.url("alice/pub.git"), "anon"]).assert_err();
        // signed-in users still read public repositories
        let bdir = k.clone_repo(&k.url_auth("bob", &bob, "alice/pub.git"), "b");
        assert_eq!(k.rev(&bdir, "HEAD"), c1);
    }
}
