//! Name validation, path traversal, case-insensitivity, rename and delete.

use crate::harness::*;
use std::fs;

both! {
    /// Hostile repository paths never reach the file system: 400 or 404, nothing outside the
    /// data directory is touched; the CLI refuses bad names.
    fn traversal_and_bad_names(b: Backend) {
        let k = Kura::start(b);
        let tok = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let url = k.url_auth("alice", &tok, "alice/app.git");
        let src = k.init_repo("src", &url);
        k.commit(&src, "a.txt", "a\n", "first");
        k.git_ok(&src, &["push", "-q", "origin", "main"]);

        // bait: real bare repositories outside the data directory, next to it and above it
        let outside = k.root.join("outside");
        fs::create_dir_all(&outside).expect("mkdir");
        k.git_ok(&outside, &["init", "-q", "--bare", "app.git"]);
        k.git_ok(&k.root, &["init", "-q", "--bare", "secret.git"]);
        let skip_log = k.log_path.clone();
        let before = tree_snapshot(&k.root, &[&k.data_dir, &skip_log, &k.work]);

        let long = "a".repeat(101);
        let repos = [
            "alice/..".to_string(),
            "alice/%2e%2e".to_string(),
            "alice/%2E%2E.git".to_string(),
            "alice/.%2e".to_string(),
            "%2e%2e/secret".to_string(),
            "..%2F..%2Foutside/app".to_string(),
            "alice/..%2F..%2Foutside%2Fapp".to_string(),
            "alice/..%2f..%2f..%2fsecret".to_string(),
            "alice%2Fapp/x".to_string(),
            "alice/app%2F..%2F..%2Fsecret".to_string(),
            "alice/%252e%252e".to_string(),
            "alice/.hidden".to_string(),
            "alice/-dash".to_string(),
            ".alice/app".to_string(),
            "-alice/app".to_string(),
            format!("alice/{long}"),
            format!("{long}/app"),
            "alice/app%00".to_string(),
            "alice/a%20b".to_string(),
            "alice/app.git.git".to_string(),
            "alice/../../outside/app".to_string(),
            "../outside/app".to_string(),
            "alice/app/../../../secret".to_string(),
            "alice/%5C..%5Csecret".to_string(),
            "api/app".to_string(),
        ];
        for repo in &repos {
            for (method, suffix) in [
                ("GET", "/info/refs?service=git-upload-pack"),
                ("GET", "/info/refs?service=git-receive-pack"),
                ("POST", "/git-upload-pack"),
                ("POST", "/git-receive-pack"),
                ("GET", "/HEAD"),
            ] {
                let path = format!("/{repo}{suffix}");
                let r = k.req(method, &path).basic("alice", &tok).body(b"0000").send();
                assert!(r.status == 400 || r.status == 404, "{method} {path}: expected 400 or 404:\n{}", r.describe());
                let r = k.req(method, &path).body(b"0000").send();
                assert!(r.status != 200, "anonymous {method} {path}: never 200:\n{}", r.describe());
                assert!(r.status >= 400 && r.status < 500, "anonymous {method} {path}:\n{}", r.describe());
            }
        }
        let after = tree_snapshot(&k.root, &[&k.data_dir, &skip_log, &k.work]);
        assert_eq!(before, after, "files outside the data directory changed");
        // git, too, gets a clean refusal
        for repo in ["alice/%2e%2e", "alice/..%2F..%2Foutside%2Fapp"] {
            let out = k.git(&k.work, &["ls-remote", &k.url_auth("alice", &tok, &format!("{repo}.git"))]).assert_err();
            assert!(!out.stderr.contains("refs/heads"), "{}", out.stderr);
        }
        // the real repository still answers
        assert_eq!(k.req("GET", "/alice/app.git/info/refs?service=git-upload-pack").basic("alice", &tok).send().status, 200);

        // the CLI refuses bad names and says what is allowed
        for bad in ["alice/..", "alice/.hidden", "alice/-dash", "alice/a b", "alice/caf\u{e9}", "alice/x;rm"] {
            let err = k.cli_err(&["repo", "create", bad]);
            assert!(err.contains("A-Z") || err.contains("a-z") || err.contains("0-9"),
                "`kura repo create {bad}` should name the allowed characters:\n{err}");
        }
        let long_name = format!("alice/{long}");
        let err = k.cli_err(&["repo", "create", &long_name]);
        assert!(err.contains("100"), "a 101-character name: error should mention the limit:\n{err}");
        k.cli_ok(&["repo", "create", &format!("alice/{}", "a".repeat(100))]);
        // `.git` is the optional URL suffix: `x.git.git` would be a name ending in `.git`
        k.cli_err(&["repo", "create", "alice/x.git.git"]);
        k.cli_err(&["repo", "create", "alice/a/b"]);
        // reserved words are refused as namespaces (they would shadow routes)
        k.cli_err(&["group", "add", "api"]);
        k.cli_err(&["group", "add", "Static"]);
        k.cli_err_stdin(&["user", "add", "healthz", "--password-stdin"], "a-long-password-1\n");
        k.cli_err_stdin(&["user", "add", "../evil", "--password-stdin"], "a-long-password-1\n");
        k.cli_err(&["group", "add", ".team"]);
        // case-insensitive uniqueness
        k.cli_err(&["repo", "create", "Alice/APP"]);
        k.cli_err_stdin(&["user", "add", "ALICE", "--password-stdin"], "a-long-password-1\n");
        // the refused names created nothing on disk
        let repos_on_disk = bare_repos(&k.data_dir);
        assert_eq!(repos_on_disk.len(), 2, "only alice/app and alice/aaa... exist on disk: {repos_on_disk:?}");
    }

    /// Rename keeps the data (old name gone), delete removes the data.
    fn rename_and_delete(b: Backend) {
        let k = Kura::start(b);
        let tok = k.user_with_token("alice");
        k.cli_ok(&["group", "add", "team"]);
        k.cli_ok(&["group", "member", "add", "team", "alice", "--role", "write"]);
        k.cli_ok(&["repo", "create", "alice/app"]);
        let src = k.init_repo("src", &k.url_auth("alice", &tok, "alice/app.git"));
        let c1 = k.commit(&src, "a.txt", "a\n", "first");
        k.git_ok(&src, &["push", "-q", "origin", "main"]);
        assert_eq!(bare_repos(&k.data_dir).len(), 1);

        let info = |repo: &str| {
            k.req("GET", &format!("/{repo}.git/info/refs?service=git-upload-pack")).basic("alice", &tok).send()
        };
        k.cli_ok(&["repo", "rename", "alice/app", "alice/app2"]);
        let d = k.clone_repo(&k.url_auth("alice", &tok, "alice/app2.git"), "renamed");
        assert_eq!(k.rev(&d, "HEAD"), c1, "renamed repository keeps its data");
        let old = info("alice/app");
        assert_eq!(old.status, 404, "old name after rename: {}", old.describe());
        assert_contains(&old.text(), "repository not found", "old name");
        let list = k.cli_ok(&["repo", "list"]);
        assert!(list.contains("alice/app2"), "repo list after rename:\n{list}");
        assert!(!list.lines().any(|l| l.split_whitespace().any(|w| w == "alice/app")), "old name still listed:\n{list}");

        // move into a group
        k.cli_ok(&["repo", "rename", "alice/app2", "team/moved"]);
        let d2 = k.clone_repo(&k.url_auth("alice", &tok, "team/moved.git"), "moved");
        assert_eq!(k.rev(&d2, "HEAD"), c1);
        assert_eq!(info("alice/app2").status, 404);
        // push under the new name works
        let c2 = k.commit(&d2, "b.txt", "b\n", "second");
        k.git_ok(&d2, &["push", "-q", "origin", "main"]);
        assert_eq!(bare_repos(&k.data_dir).len(), 1, "rename must not copy the repository");

        // delete
        k.cli_ok(&["repo", "delete", "team/moved"]);
        let r = info("team/moved");
        assert_eq!(r.status, 404, "deleted repository: {}", r.describe());
        assert_eq!(bare_repos(&k.data_dir).len(), 0, "delete removes the data: {:?}", bare_repos(&k.data_dir));
        assert!(!k.cli_ok(&["repo", "list"]).contains("team/moved"));
        k.cli_err(&["repo", "delete", "team/moved"]);
        // a new repository under the same name starts empty
        k.cli_ok(&["repo", "create", "team/moved"]);
        let ls = k.git_ok(&k.work, &["ls-remote", &k.url_auth("alice", &tok, "team/moved.git")]);
        assert!(!ls.contains(&c2) && !ls.contains(&c1), "re-created repository must be empty:\n{ls}");
    }
}
