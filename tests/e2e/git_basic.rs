//! The README flow, protocol versions, gzip request bodies, shallow and partial clones.

use crate::harness::*;
use std::fs;

both! {
    /// README "First steps": user, token, repository, clone, push, fetch, pull, tags, branches.
    fn readme_flow(b: Backend) {
        let k = Kura::start(b);
        k.add_user("alice", "s3cret-pass");
        let tok = k.token("alice", "write");
        let printed = k.cli_ok(&["repo", "create", "alice/app"]);
        assert_eq!(printed.trim().lines().count(), 1, "repo create must print only the clone URL: {printed:?}");
        assert_contains(&printed, "alice/app", "repo create prints the clone URL");
        assert!(printed.trim().starts_with("http"), "clone URL: {printed:?}");

        let url = k.url_auth("alice", &tok, "alice/app.git");
        let out = k.git(&k.work, &["clone", &url, "a"]).assert_ok();
        assert_contains(&out.stderr, "empty repository", "cloning an empty repository");
        let a = k.work.join("a");
        let c1 = k.commit(&a, "README.md", "hello\n", "first");
        let out = k.git(&a, &["push", "origin", "HEAD:main"]).assert_ok();
        assert_contains(&out.stderr, "main", "push output");
        assert_eq!(k.remote_ref(&url, "refs/heads/main"), Some(c1.clone()));

        // HEAD of the new repository is main
        let sym = k.git_ok(&k.work, &["ls-remote", "--symref", &url, "HEAD"]);
        assert_contains(&sym, "ref: refs/heads/main\tHEAD", "ls-remote --symref HEAD");

        // clone again, with the password instead of the token
        let bdir = k.clone_repo(&k.url_auth("alice", "s3cret-pass", "alice/app.git"), "b");
        assert_eq!(k.rev(&bdir, "HEAD"), c1, "a fresh clone has the pushed commit");
        // `.git` is optional in the URL
        let cdir = k.clone_repo(&k.url_auth("alice", &tok, "alice/app"), "c");
        assert_eq!(k.rev(&cdir, "HEAD"), c1, "clone without .git suffix");
        // names are case-insensitive
        let ddir = k.clone_repo(&k.url_auth("alice", &tok, "Alice/APP.git"), "d");
        assert_eq!(k.rev(&ddir, "HEAD"), c1, "clone with another case");

        // fetch and pull
        let c2 = k.commit(&a, "src/main.rs", "fn main() {}\n", "second");
        k.git_ok(&a, &["push", "origin", "main"]);
        k.git_ok(&bdir, &["fetch", "origin"]);
        assert_eq!(k.rev(&bdir, "origin/main"), c2, "fetch gets the new commit");
        k.git_ok(&cdir, &["pull", "origin", "main"]);
        assert_eq!(k.rev(&cdir, "HEAD"), c2, "pull (remote URL without .git)");
        k.git_ok(&ddir, &["pull"]);
        assert_eq!(k.rev(&ddir, "HEAD"), c2, "pull");

        // tags: lightweight and annotated
        k.git_ok(&a, &["tag", "v1.0"]);
        k.git_ok(&a, &["tag", "-a", "v1.1", "-m", "annotated"]);
        k.git_ok(&a, &["push", "origin", "v1.0", "v1.1"]);
        assert_eq!(k.remote_ref(&url, "refs/tags/v1.0"), Some(c2.clone()));
        assert_eq!(k.remote_ref(&url, "refs/tags/v1.1^{}"), Some(c2.clone()), "peeled annotated tag");
        k.git_ok(&bdir, &["fetch", "--tags", "origin"]);
        assert_eq!(k.rev(&bdir, "v1.1^{commit}"), c2);

        // a non-default branch: push, then delete
        let c3 = k.commit(&a, "feature.txt", "f\n", "feature work");
        k.git_ok(&a, &["push", "origin", "HEAD:refs/heads/feature"]);
        assert_eq!(k.remote_ref(&url, "refs/heads/feature"), Some(c3));
        k.git_ok(&a, &["push", "origin", "--delete", "feature"]);
        assert_eq!(k.remote_ref(&url, "refs/heads/feature"), None, "deleted branch is gone");
        assert_eq!(k.remote_ref(&url, "refs/heads/main"), Some(c2.clone()));

        // the site admin (KURA_ADMIN_PASSWORD) reads every repository
        let adm = k.git_ok(&k.work, &["ls-remote", &k.url_auth("admin", ADMIN_PASSWORD, "alice/app.git")]);
        assert_contains(&adm, &c2, "admin ls-remote");

        // fsck of a fresh clone
        let e = k.clone_repo(&url, "e");
        k.git_ok(&e, &["fsck", "--strict"]);
    }

    /// `protocol.version=0` and `=2` for clone, fetch and ls-remote; gzip request bodies.
    fn protocol_v0_v2_and_gzip(b: Backend) {
        let k = Kura::start(b);
        let tok = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let url = k.url_auth("alice", &tok, "alice/app.git");
        let src = k.init_repo("src", &url);
        let base = k.commit(&src, "a.txt", "a\n", "base");
        // 60 branches on distinct commits: the want lists exceed 1 kB, so git gzips them
        for i in 0..60 {
            k.git_ok(&src, &["checkout", "-q", "-b", &format!("topic-{i:02}"), &base]);
            k.commit(&src, &format!("t{i}.txt"), &format!("{i}\n"), &format!("topic {i}"));
        }
        k.git_ok(&src, &["checkout", "-q", "main"]);
        k.git_ok(&src, &["push", "-q", "origin", "--all"]);
        k.git_ok(&src, &["push", "-q", "origin", "main"]);

        for v in ["0", "2"] {
            let pv = format!("protocol.version={v}");
            let name = format!("clone-v{v}");
            let out = k
                .git_cmd(&k.work, &["-c", &pv, "clone", "-q", "--no-single-branch", &url, &name])
                .env("GIT_TRACE_PACKET", "1")
                .env("GIT_TRACE_CURL", "1")
                .env("GIT_TRACE_CURL_NO_DATA", "1")
                .run()
                .assert_ok();
            let trace = out.stderr;
            if v == "2" {
                assert_contains(&trace, "version 2", "protocol v2 clone must negotiate v2 (packet trace)");
            } else {
                assert!(!trace.contains("git< version 2"), "protocol v0 clone must not use v2:\n{}", &trace[..trace.len().min(4000)]);
                assert!(
                    trace.to_ascii_lowercase().contains("content-encoding: gzip"),
                    "git should have sent a gzip request body in this v0 clone (60 wants)"
                );
            }
            let dir = k.work.join(&name);
            assert_eq!(k.rev(&dir, "HEAD"), k.rev(&src, "main"), "clone v{v}: HEAD");
            let branches = k.git_ok(&dir, &["branch", "-r"]);
            assert_eq!(branches.lines().filter(|l| l.contains("origin/topic-")).count(), 60, "all branches cloned (v{v}):\n{branches}");
            k.git_ok(&dir, &["fsck"]);

            let ls = k.git_ok(&k.work, &["-c", &pv, "ls-remote", &url]);
            assert_eq!(ls.lines().filter(|l| l.contains("refs/heads/")).count(), 61, "ls-remote v{v}:\n{ls}");
            assert!(ls.lines().any(|l| l.ends_with("\tHEAD")), "ls-remote v{v} shows HEAD:\n{ls}");

            // fetch with the same protocol: a new commit and many haves (gzipped request)
            let c = k.commit(&src, "main.txt", &format!("v{v}\n"), &format!("for v{v}"));
            k.git_ok(&src, &["push", "-q", "origin", "main"]);
            k.git_ok(&dir, &["-c", &pv, "fetch", "origin"]);
            assert_eq!(k.rev(&dir, "origin/main"), c, "fetch v{v}");
            k.git_ok(&dir, &["fsck"]);
        }

        // raw v2 requests: advertisement, then ls-refs with and without a gzip body
        let adv = k
            .req("GET", "/alice/app.git/info/refs?service=git-upload-pack")
            .basic("alice", &tok)
            .header("Git-Protocol", "version=2")
            .send();
        assert_eq!(adv.status, 200, "{}", adv.describe());
        assert_eq!(adv.header("content-type"), Some("application/x-git-upload-pack-advertisement"), "{}", adv.describe());
        assert_contains(&adv.text(), "version 2", "v2 advertisement");
        assert_contains(&adv.text(), "ls-refs", "v2 advertisement");
        let main = k.remote_ref(&url, "refs/heads/main").expect("main");

        let mut body = pkt("command=ls-refs\n");
        body.extend_from_slice(&pkt("agent=git/2.47.0\n"));
        body.extend_from_slice(b"0001");
        body.extend_from_slice(&pkt("peel\n"));
        body.extend_from_slice(&pkt("symrefs\n"));
        body.extend_from_slice(&pkt("ref-prefix refs/heads/\n"));
        body.extend_from_slice(b"0000");
        for gz in [false, true] {
            let mut r = k
                .req("POST", "/alice/app.git/git-upload-pack")
                .basic("alice", &tok)
                .header("Content-Type", "application/x-git-upload-pack-request")
                .header("Accept", "application/x-git-upload-pack-result")
                .header("Git-Protocol", "version=2");
            r = if gz { r.header("Content-Encoding", "gzip").body(gzip(&body)) } else { r.body(&body) };
            let resp = r.send();
            assert_eq!(resp.status, 200, "ls-refs (gzip: {gz}): {}", resp.describe());
            let text = resp.text();
            assert_contains(&text, &format!("{main} refs/heads/main"), &format!("ls-refs answer (gzip: {gz})"));
            assert_contains(&text, "refs/heads/topic-59", "ls-refs lists every branch");
            assert!(text.ends_with("0000"), "ls-refs answer ends with a flush packet: {text:?}");
        }
    }

    /// Shallow clones (`--depth`, `--shallow-since`, `--deepen`) and partial clones
    /// (`blob:none`, `tree:0`), each checked with `git fsck`.
    fn shallow_and_partial_clones(b: Backend) {
        let k = Kura::start(b);
        let tok = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/hist"]);
        let url = k.url_auth("alice", &tok, "alice/hist.git");
        let src = k.init_repo("src", &url);
        let mut commits = Vec::new();
        for i in 0..20 {
            let day = format!("2020-01-{:02}T12:00:00Z", i + 1);
            fs::create_dir_all(src.join("dir")).expect("mkdir");
            fs::write(src.join(format!("f{}.txt", i % 5)), format!("version {i}\n").repeat(50)).expect("write");
            fs::write(src.join(format!("dir/{i}.txt")), format!("file {i}\n")).expect("write");
            k.git_ok(&src, &["add", "-A"]);
            k.git_cmd(&src, &["commit", "-q", "-m", &format!("commit {i}")])
                .env("GIT_AUTHOR_DATE", &day)
                .env("GIT_COMMITTER_DATE", &day)
                .run()
                .assert_ok();
            commits.push(k.rev(&src, "HEAD"));
        }
        k.git_ok(&src, &["push", "-q", "origin", "main"]);
        let head = commits[19].clone();
        let count = |dir: &std::path::Path| -> usize {
            k.git_ok(dir, &["rev-list", "--count", "HEAD"]).trim().parse().expect("count")
        };

        for v in ["2", "0"] {
            let pv = format!("protocol.version={v}");
            // --depth 1, then --deepen 2
            let d = k.work.join(format!("depth1-v{v}"));
            k.git_ok(&k.work, &["-c", &pv, "clone", "-q", "--depth", "1", &url, d.to_str().expect("utf8")]);
            assert_eq!(k.rev(&d, "HEAD"), head);
            assert_eq!(count(&d), 1, "--depth 1 (v{v})");
            assert!(d.join(".git/shallow").is_file(), "a shallow clone has .git/shallow");
            k.git_ok(&d, &["fsck"]);
            k.git_ok(&d, &["-c", &pv, "fetch", "-q", "--deepen", "2"]);
            assert_eq!(count(&d), 3, "--deepen 2 after --depth 1 (v{v})");
            k.git_ok(&d, &["fsck"]);
            k.git_ok(&d, &["-c", &pv, "fetch", "-q", "--unshallow"]);
            assert_eq!(count(&d), 20, "--unshallow (v{v})");
            k.git_ok(&d, &["fsck"]);
        }

        // --shallow-since: commits 15..20 are dated 2020-01-15 and later
        let s = k.work.join("since");
        k.git_ok(&k.work, &["clone", "-q", "--shallow-since=2020-01-14T23:00:00Z", &url, s.to_str().expect("utf8")]);
        assert_eq!(count(&s), 6, "--shallow-since keeps the 6 commits from 2020-01-15 on");
        k.git_ok(&s, &["fsck"]);

        // partial clones
        for filter in ["blob:none", "tree:0"] {
            let p = k.work.join(format!("partial-{}", filter.replace(':', "-")));
            let out = k
                .git(&k.work, &["clone", "-q", &format!("--filter={filter}"), &url, p.to_str().expect("utf8")])
                .assert_ok();
            assert!(!out.stderr.contains("filtering not recognized"), "server must honour --filter={filter}:\n{}", out.stderr);
            assert_eq!(k.rev(&p, "HEAD"), head);
            assert_eq!(k.git_ok(&p, &["config", "remote.origin.promisor"]).trim(), "true");
            let missing = k.git_ok(&p, &["rev-list", "--objects", "--all", "--missing=print"]);
            let n_missing = missing.lines().filter(|l| l.starts_with('?')).count();
            assert!(n_missing > 0, "--filter={filter}: the clone should lack some objects:\n{missing}");
            k.git_ok(&p, &["fsck"]);
            // lazily fetch old content: blobs (and trees) from the server on demand
            let old = k.git_ok(&p, &["show", &format!("{}:f0.txt", commits[5])]);
            assert_contains(&old, "version 5", "lazy fetch of an old blob");
            k.git_ok(&p, &["log", "-q", "--stat", "-p"]);
            k.git_ok(&p, &["fsck"]);
        }
    }

    /// What a push brings is checked: malformed objects (`receive.fsckObjects`) and refs outside
    /// `refs/heads/` and `refs/tags/` are refused, and nothing is updated.
    fn receive_checks(b: Backend) {
        let k = Kura::start(b);
        let tok = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let url = k.url_auth("alice", &tok, "alice/app.git");
        let src = k.init_repo("src", &url);
        let c1 = k.commit(&src, "a.txt", "a\n", "first");
        k.git_ok(&src, &["push", "-q", "origin", "main"]);

        for r in ["refs/notes/x", "refs/pull/1/head", "refs/kura/internal"] {
            let out = k.git(&src, &["push", "origin", &format!("HEAD:{r}")]).assert_err();
            assert!(out.stderr.contains("remote:"), "push to {r} should be refused by the server:\n{}", out.stderr);
            assert_eq!(k.remote_ref(&url, r), None, "{r} must not be created");
        }

        // a commit without author e-mail or date
        let tree = k.rev(&src, "HEAD^{tree}");
        let bad = format!("tree {tree}\nparent {c1}\nauthor nobody\ncommitter nobody\n\nbroken\n");
        let id = k
            .git_cmd(&src, &["hash-object", "-t", "commit", "-w", "--literally", "--stdin"])
            .stdin(bad)
            .run()
            .assert_ok()
            .stdout
            .trim()
            .to_string();
        k.git_ok(&src, &["update-ref", "refs/heads/broken", &id]);
        let out = k.git(&src, &["push", "origin", "broken"]).assert_err();
        assert!(out.stderr.contains("remote:") || out.stderr.contains("unpack"), "malformed commit:\n{}", out.stderr);
        assert_eq!(k.remote_ref(&url, "refs/heads/broken"), None, "a malformed commit must not land");
        let out = k.git(&src, &["push", "origin", "broken:main"]).assert_err();
        assert!(!out.stderr.is_empty());
        assert_eq!(k.remote_ref(&url, "refs/heads/main"), Some(c1.clone()));

        let d = k.clone_repo(&url, "check");
        k.git_ok(&d, &["fsck", "--strict"]);
        assert_eq!(k.rev(&d, "HEAD"), c1);
    }
}
