//! Protected branches: force-push, deletion, allow-lists, default branch, atomic refusal.

use crate::harness::*;

/// Lines of git's stderr that come from the server.
fn remote_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("remote:"))
        .collect()
}

#[track_caller]
fn assert_remote_line(stderr: &str, parts: &[&str], what: &str) {
    let found = remote_lines(stderr)
        .iter()
        .any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        found,
        "{what}: expected a `remote:` line containing {parts:?}, git said:\n{stderr}"
    );
}

both! {
    fn protected_branches(b: Backend) {
        let k = Kura::start(b);
        // alice owns alice/app (role admin); she signs in with her password, since a token's
        // scope caps the role and write-scope tokens are not repository admins
        let alice = "alice-pw-123";
        k.add_user("alice", alice);
        let bob = k.user_with_token("bob");
        let carol = k.user_with_token("carol");
        k.cli_ok(&["repo", "create", "alice/app"]);
        k.cli_ok(&["grant", "alice/app", "bob", "--role", "write"]);
        k.cli_ok(&["grant", "alice/app", "carol", "--role", "write"]);
        let aurl = k.url_auth("alice", alice, "alice/app.git");
        let a = k.init_repo("a", &aurl);
        let c1 = k.commit(&a, "a.txt", "1\n", "one");
        let c2 = k.commit(&a, "a.txt", "2\n", "two");
        k.git_ok(&a, &["push", "-q", "origin", "main", "main:release/1.0", "main:feature/x", "main:feature/z"]);

        k.cli_ok(&["protect", "alice/app", "main"]);
        k.cli_ok(&["protect", "alice/app", "release/*"]);

        // bob (write, not admin) cannot push to protected main
        let bdir = k.clone_repo(&k.url_auth("bob", &bob, "alice/app.git"), "b");
        let b1 = k.commit(&bdir, "b.txt", "b\n", "bob");
        let out = k.git(&bdir, &["push", "origin", "HEAD:main"]).assert_err();
        assert_remote_line(&out.stderr, &["is protected: only", "may push to it"], "writer pushing to protected main");
        assert_eq!(k.remote_ref(&aurl, "refs/heads/main"), Some(c2.clone()), "main unchanged");

        // the refusal is atomic: a fine update in the same push does not land either
        let out = k.git(&bdir, &["push", "origin", "HEAD:refs/heads/feature/z", "HEAD:main"]).assert_err();
        assert_remote_line(&out.stderr, &["is protected: only", "may push to it"], "mixed push");
        assert_eq!(k.remote_ref(&aurl, "refs/heads/feature/z"), Some(c2.clone()), "feature/z must be unchanged when another ref of the push is refused");
        assert_eq!(k.remote_ref(&aurl, "refs/heads/main"), Some(c2.clone()));
        // ...and lands alone
        k.git_ok(&bdir, &["push", "-q", "origin", "HEAD:refs/heads/feature/z"]);
        assert_eq!(k.remote_ref(&aurl, "refs/heads/feature/z"), Some(b1.clone()));

        // alice (repository admin) fast-forwards main; with a write-scope token she cannot
        // (the scope caps her role at write)
        let c3 = k.commit(&a, "a.txt", "3\n", "three");
        let alice_write = k.token("alice", "write");
        let out = k.git(&a, &["push", &k.url_auth("alice", &alice_write, "alice/app.git"), "main"]).assert_err();
        assert_remote_line(&out.stderr, &["is protected: only", "may push to it"], "owner with a write-scope token");
        k.git_ok(&a, &["push", "-q", "origin", "main"]);
        assert_eq!(k.remote_ref(&aurl, "refs/heads/main"), Some(c3.clone()));

        // ...but cannot force-push it
        k.git_ok(&a, &["reset", "-q", "--hard", &c1]);
        k.commit(&a, "alt.txt", "alt\n", "rewrite");
        let out = k.git(&a, &["push", "--force", "origin", "main"]).assert_err();
        assert_remote_line(&out.stderr, &["is protected: force-push is not allowed"], "force-push to protected main");
        assert_eq!(k.remote_ref(&aurl, "refs/heads/main"), Some(c3.clone()));

        // release/* protects release/1.0: no deletion, no force-push
        let out = k.git(&a, &["push", "origin", "--delete", "release/1.0"]).assert_err();
        assert_remote_line(&out.stderr, &["release/1.0", "is protected: it cannot be deleted"], "deleting release/1.0");
        assert_eq!(k.remote_ref(&aurl, "refs/heads/release/1.0"), Some(c2.clone()));
        let out = k.git(&a, &["push", "--force", "origin", "HEAD:release/1.0"]).assert_err();
        assert_remote_line(&out.stderr, &["is protected: force-push is not allowed"], "force-push to release/1.0");
        assert_eq!(k.remote_ref(&aurl, "refs/heads/release/1.0"), Some(c2.clone()));

        // one `remote:` line per refused ref
        let out = k.git(&a, &["push", "--force", "origin", "HEAD:main", "HEAD:release/1.0"]).assert_err();
        let refused: Vec<&str> = remote_lines(&out.stderr).into_iter().filter(|l| l.contains("is protected")).collect();
        assert_eq!(refused.len(), 2, "one remote line per refused ref:\n{}", out.stderr);

        // feature/x is not protected: bob may force-push and delete it
        k.git_ok(&bdir, &["push", "-q", "--force", "origin", "HEAD:refs/heads/feature/x"]);
        k.git_ok(&bdir, &["reset", "-q", "--hard", &c1]);
        k.git_ok(&bdir, &["push", "-q", "--force", "origin", "HEAD:refs/heads/feature/x"]);
        assert_eq!(k.remote_ref(&aurl, "refs/heads/feature/x"), Some(c1.clone()));
        k.git_ok(&bdir, &["push", "-q", "origin", "--delete", "feature/x"]);
        assert_eq!(k.remote_ref(&aurl, "refs/heads/feature/x"), None);

        // the default branch can never be deleted, protected or not
        let out = k.git(&a, &["push", "origin", "--delete", "main"]).assert_err();
        assert!(out.stderr.contains("cannot delete the default branch") || out.stderr.contains("is protected: it cannot be deleted"),
            "deleting protected main:\n{}", out.stderr);
        k.cli_ok(&["unprotect", "alice/app", "main"]);
        let out = k.git(&a, &["push", "origin", "--delete", "main"]).assert_err();
        assert_remote_line(&out.stderr, &["cannot delete the default branch"], "deleting the default branch");
        assert_eq!(k.remote_ref(&aurl, "refs/heads/main"), Some(c3.clone()));
        // unprotected now: force-push works for a writer
        k.git_ok(&bdir, &["push", "-q", "--force", "origin", "HEAD:main"]);
        assert_eq!(k.remote_ref(&aurl, "refs/heads/main"), Some(c1.clone()));

        // --allow-push: only the listed users may push
        k.cli_ok(&["protect", "alice/app", "main", "--allow-push", "bob"]);
        let bnew = k.commit(&bdir, "b2.txt", "b2\n", "bob again");
        k.git_ok(&bdir, &["push", "-q", "origin", "HEAD:main"]);
        assert_eq!(k.remote_ref(&aurl, "refs/heads/main"), Some(bnew.clone()));
        let cdir = k.clone_repo(&k.url_auth("carol", &carol, "alice/app.git"), "c");
        k.commit(&cdir, "c.txt", "c\n", "carol");
        let out = k.git(&cdir, &["push", "origin", "HEAD:main"]).assert_err();
        assert_remote_line(&out.stderr, &["is protected: only", "may push to it"], "carol not on the allow-list");
        assert_eq!(k.remote_ref(&aurl, "refs/heads/main"), Some(bnew.clone()));
        // and force-push stays forbidden for allowed pushers
        k.git_ok(&bdir, &["reset", "-q", "--hard", &c1]);
        let out = k.git(&bdir, &["push", "--force", "origin", "HEAD:main"]).assert_err();
        assert_remote_line(&out.stderr, &["is protected: force-push is not allowed"], "allowed pusher force-pushing");

        let f = k.clone_repo(&aurl, "final");
        k.git_ok(&f, &["fsck"]);
        assert_eq!(k.rev(&f, "HEAD"), bnew);
    }
}
