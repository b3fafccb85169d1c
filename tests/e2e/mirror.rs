//! Push mirrors: CodeCommit (moto for the API, `tests/codecommit_standin.py` for the SigV4 Git
//! endpoint) and a generic remote with a user name and password; faults (remote down, `kill -9`
//! of Kura mid-run, two servers sharing one database); secrets; metrics; latency figures.
//!
//! Needs `tests/.venv` (made by `tests/run`).

use crate::harness::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A repository `alice/NAME` and a local clone-to-be (`work/NAME`, origin = Kura): (url, dir).
fn new_repo(k: &Kura, tok: &str, name: &str) -> (String, PathBuf) {
    k.cli_ok(&["repo", "create", &format!("alice/{name}")]);
    let url = k.url_auth("alice", tok, &format!("alice/{name}.git"));
    let dir = k.init_repo(name, &url);
    (url, dir)
}

/// `git push ARGS` (must succeed); returns git's stderr (where the `remote:` lines are).
fn push(k: &Kura, dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["push"];
    a.extend_from_slice(args);
    k.git(dir, &a).assert_ok().stderr
}

/// The `remote: mirrored to TARGET (SUMMARY) in X s` line: (summary, seconds).
#[track_caller]
fn assert_mirrored(stderr: &str, target: &str) -> (String, f64) {
    mirrored_line(stderr, target).unwrap_or_else(|| {
        panic!("the push should print `remote: mirrored to {target} (...) in X s`, got:\n{stderr}")
    })
}

fn status(k: &Kura, repo: &str) -> String {
    k.cli_ok(&["mirror", "status", repo])
}

fn is_verified(st: &str) -> bool {
    status_field(st, "remote heads:").as_deref() == Some("verified")
}

fn pending_zero(st: &str) -> bool {
    status_field(st, "pending:").is_some_and(|p| p.starts_with("0 push"))
}

/// Kura's branches and tags (`kura_url`) equal the remote's (a bare repository path).
#[track_caller]
fn assert_same(k: &Kura, kura_url: &str, remote: &Path) {
    let ours = k.heads_and_tags(kura_url);
    let theirs = k.heads_and_tags(&remote.display().to_string());
    assert!(!ours.is_empty(), "Kura's repository has no refs");
    assert_eq!(
        ours,
        theirs,
        "remote {} differs from Kura's refs",
        remote.display()
    );
}

/// Waits until the remote equals Kura, and `mirror status` says verified with nothing pending.
/// Returns the last status.
#[track_caller]
fn wait_synced(k: &Kura, kura_url: &str, remote: &Path, repo: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let ours = k.heads_and_tags(kura_url);
        let theirs = k.heads_and_tags(&remote.display().to_string());
        let st = status(k, repo);
        if ours == theirs && is_verified(&st) && pending_zero(&st) {
            return st;
        }
        if start.elapsed() > timeout {
            panic!(
                "the mirror of {repo} did not catch up within {timeout:?}\nKura:   {ours:?}\nremote: {theirs:?}\nstatus:\n{st}"
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

fn short(oid: &str) -> &str {
    &oid[..7]
}

both! {
    /// `mirror add --create` creates the CodeCommit repository (moto) and every push reaches
    /// the stand-in with a SigV4 password it verifies: branches, tags, deletions; `--create` on
    /// a repository that exists already works too.
    fn codecommit_end_to_end(b: Backend) {
        let moto = Moto::start();
        let cc = Standin::for_test_identity();
        let k = Kura::builder(b).codecommit(&cc.endpoint(), Some(&moto.endpoint())).start();
        let tok = k.user_with_token("alice");
        let (url, src) = new_repo(&k, &tok, "app");
        let target = "codecommit://us-east-1/app-cc";
        assert!(!moto.repository_exists("app-cc"), "moto starts without the repository");
        k.cli_ok(&["mirror", "add", "alice/app", target, "--create"]);

        let c1 = k.commit(&src, "a.txt", "one\n", "first");
        let err = push(&k, &src, &["origin", "main"]);
        let (summary, _) = assert_mirrored(&err, target);
        assert_eq!(summary, format!("main {}", short(&c1)), "summary of the first push:\n{err}");
        assert!(moto.repository_exists("app-cc"), "--create must have created app-cc in CodeCommit (moto)");
        let remote = cc.bare("app-cc");
        assert_same(&k, &url, &remote);

        // a tag and a second branch
        k.git_ok(&src, &["tag", "-a", "v1.0", "-m", "release 1.0"]);
        k.git_ok(&src, &["checkout", "-q", "-b", "feature"]);
        let c2 = k.commit(&src, "b.txt", "two\n", "feature work");
        let err = push(&k, &src, &["origin", "v1.0", "feature"]);
        let (summary, _) = assert_mirrored(&err, target);
        assert!(summary.contains(&format!("feature {}", short(&c2))) && summary.contains("v1.0"), "summary: {summary}");
        assert_same(&k, &url, &remote);
        let theirs = k.heads_and_tags(&remote.display().to_string());
        assert_eq!(theirs.get("refs/heads/feature"), Some(&c2));
        assert!(theirs.contains_key("refs/tags/v1.0"), "{theirs:?}");

        // deleting the branch deletes it on the remote
        k.git_ok(&src, &["checkout", "-q", "main"]);
        let err = push(&k, &src, &["origin", ":feature"]);
        let (summary, _) = assert_mirrored(&err, target);
        assert_eq!(summary, "feature deleted");
        let theirs = k.heads_and_tags(&remote.display().to_string());
        assert!(!theirs.contains_key("refs/heads/feature"), "feature must be deleted on the remote: {theirs:?}");
        assert_same(&k, &url, &remote);

        let st = status(&k, "alice/app");
        assert!(is_verified(&st), "status should say verified:\n{st}");
        assert_contains(&st, "last error:    none", "mirror status");
        assert!(pending_zero(&st), "nothing pending:\n{st}");
        assert_contains(&st, "refs/tags/v1.0", "status lists the remote refs");
        let list = k.cli_ok(&["mirror", "list"]);
        assert_contains(&list, target, "mirror list");

        // --create on a CodeCommit repository that exists already
        moto.create_repository("pre-existing");
        let (url2, src2) = new_repo(&k, &tok, "lib");
        let target2 = "codecommit://us-east-1/pre-existing";
        k.cli_ok(&["mirror", "add", "alice/lib", target2, "--create"]);
        let c = k.commit(&src2, "l.txt", "lib\n", "lib");
        let err = push(&k, &src2, &["origin", "main"]);
        let (summary, _) = assert_mirrored(&err, target2);
        assert_eq!(summary, format!("main {}", short(&c)));
        assert_same(&k, &url2, &cc.bare("pre-existing"));
        assert_eq!(cc.overlaps(), "", "no overlapping pushes");
    }

    /// `--branches 'release/*'` mirrors only matching branches (and every tag);
    /// `--keep-divergent-refs` never overwrites or deletes a remote branch Kura is not ahead of.
    fn codecommit_branch_filter_and_divergent_refs(b: Backend) {
        let cc = Standin::for_test_identity();
        let k = Kura::builder(b).codecommit(&cc.endpoint(), None).start();
        let tok = k.user_with_token("alice");

        // --- branch filter
        let (url, src) = new_repo(&k, &tok, "rel");
        let target = "codecommit://us-east-1/rel";
        k.cli_ok(&["mirror", "add", "alice/rel", target, "--branches", "release/*"]);
        let c1 = k.commit(&src, "a.txt", "one\n", "first");
        k.git_ok(&src, &["branch", "release/1.0"]);
        k.git_ok(&src, &["branch", "topic"]);
        k.git_ok(&src, &["tag", "v1"]);
        let err = push(&k, &src, &["origin", "main", "release/1.0", "topic", "v1"]);
        let (summary, _) = assert_mirrored(&err, target);
        assert!(!summary.contains("main") && !summary.contains("topic"), "summary names only mirrored refs: {summary}");
        let theirs = k.heads_and_tags(&cc.bare("rel").display().to_string());
        let want: BTreeMap<String, String> = [
            ("refs/heads/release/1.0".to_string(), c1.clone()),
            ("refs/tags/v1".to_string(), c1.clone()),
        ]
        .into_iter()
        .collect();
        assert_eq!(theirs, want, "only release/* branches and tags reach the remote");
        assert_eq!(k.heads_and_tags(&url).len(), 4, "Kura has all four refs");
        let c2 = k.commit(&src, "b.txt", "two\n", "second");
        k.git_ok(&src, &["branch", "release/2.0"]);
        let err = push(&k, &src, &["origin", "main", "release/2.0"]);
        let (summary, _) = assert_mirrored(&err, target);
        assert_eq!(summary, format!("release/2.0 {}", short(&c2)));
        let theirs = k.heads_and_tags(&cc.bare("rel").display().to_string());
        assert_eq!(theirs.get("refs/heads/release/2.0"), Some(&c2));
        assert!(!theirs.contains_key("refs/heads/main"), "{theirs:?}");
        let st = status(&k, "alice/rel");
        assert_contains(&st, "release/*", "status shows the branch filter");
        assert!(is_verified(&st), "{st}");

        // --- keep divergent refs
        let (url, src) = new_repo(&k, &tok, "kd");
        let target = "codecommit://us-east-1/kd";
        k.cli_ok(&["mirror", "add", "alice/kd", target, "--keep-divergent-refs"]);
        k.commit(&src, "a.txt", "one\n", "first");
        assert_mirrored(&push(&k, &src, &["origin", "main"]), target);
        let remote = cc.bare("kd");
        assert_same(&k, &url, &remote);
        // someone commits to the remote's main behind Kura's back
        k.git_ok(&k.work, &["clone", "-q", "-b", "main", &remote.display().to_string(), "side"]);
        let side = k.work.join("side");
        let theirs_commit = k.commit(&side, "side.txt", "side\n", "made on the remote");
        k.git_ok(&side, &["push", "-q", "origin", "main"]);
        // Kura moves main elsewhere and adds a branch
        let ours = k.commit(&src, "b.txt", "two\n", "made in Kura");
        k.git_ok(&src, &["branch", "other"]);
        let err = push(&k, &src, &["origin", "main", "other"]);
        let (summary, _) = assert_mirrored(&err, target);
        assert!(!summary.contains("main"), "main must be skipped: {summary}");
        let r = k.heads_and_tags(&remote.display().to_string());
        assert_eq!(r.get("refs/heads/main"), Some(&theirs_commit), "the diverged remote main must be kept");
        assert_eq!(r.get("refs/heads/other"), Some(&ours), "other reaches the remote");
        // a deletion in Kura deletes nothing there
        assert_mirrored(&push(&k, &src, &["origin", ":other"]), target);
        let r = k.heads_and_tags(&remote.display().to_string());
        assert_eq!(r.get("refs/heads/other"), Some(&ours), "keep-divergent-refs deletes nothing");
        assert_eq!(r.get("refs/heads/main"), Some(&theirs_commit));
        let st = status(&k, "alice/kd");
        assert!(is_verified(&st), "{st}");
        assert_contains(&st, "last error:    none", "status");
        assert_contains(&st, "keep divergent refs: yes", "status");
    }

    /// AWS_SESSION_TOKEN reaches the Git password (user `KEY%TOKEN`).
    fn codecommit_session_token(b: Backend) {
        let cc = Standin::codecommit(AWS_KEY_ID, AWS_SECRET, Some("tok123"));
        let k = Kura::builder(b)
            .codecommit(&cc.endpoint(), None)
            .env("AWS_SESSION_TOKEN", "tok123")
            .start();
        let tok = k.user_with_token("alice");
        let (url, src) = new_repo(&k, &tok, "app");
        let target = "codecommit://us-east-1/st";
        k.cli_ok(&["mirror", "add", "alice/app", target]);
        let c = k.commit(&src, "a.txt", "one\n", "first");
        let err = push(&k, &src, &["origin", "main"]);
        let (summary, _) = assert_mirrored(&err, target);
        assert_eq!(summary, format!("main {}", short(&c)));
        assert_same(&k, &url, &cc.bare("st"));
        // CLI sync too (git runs in the CLI process)
        let out = k.cli(&["mirror", "sync", "alice/app"]).run().assert_ok();
        assert_contains(&out.stderr, "verified", "mirror sync");
    }

    /// A wrong secret key: the push succeeds, says the mirror is queued and retrying; the
    /// stored error names neither the secret nor the access key id.
    fn codecommit_wrong_secret(b: Backend) {
        let cc = Standin::codecommit(AWS_KEY_ID, "theStandinExpectsAnotherSecretKey0123", None);
        let k = Kura::builder(b).codecommit(&cc.endpoint(), None).start();
        let tok = k.user_with_token("alice");
        let (_url, src) = new_repo(&k, &tok, "app");
        let target = "codecommit://us-east-1/app";
        k.cli_ok(&["mirror", "add", "alice/app", target]);
        k.commit(&src, "a.txt", "one\n", "first");
        let t = Instant::now();
        let err = push(&k, &src, &["origin", "main"]);
        assert!(t.elapsed() < Duration::from_secs(15), "push took {:?}", t.elapsed());
        assert_contains(&err, &format!("mirror to {target} queued ("), "push output");
        assert_contains(&err, "retrying", "push output");
        for secret in [AWS_SECRET, AWS_KEY_ID] {
            assert!(!err.contains(secret), "push output shows {secret}:\n{err}");
        }
        let st = status(&k, "alice/app");
        let e = status_field(&st, "last error:").expect("last error line");
        assert_ne!(e, "none", "status must show the error:\n{st}");
        for secret in [AWS_SECRET, AWS_KEY_ID] {
            assert!(!st.contains(secret), "mirror status shows {secret}:\n{st}");
            assert!(!k.logs().contains(secret), "Kura's log contains {secret}");
        }
        assert!(!is_verified(&st), "{st}");
        assert!(cc.logs().contains("signature mismatch"), "the stand-in refused the signature:\n{}", cc.logs());
        eprintln!("wrong secret: last error: {e}");
    }

    /// `--create` with CodeCommit's API unreachable: `mirror sync` fails with a clear message,
    /// and `mirror status` shows it.
    fn codecommit_api_unreachable(b: Backend) {
        let dead = format!("http://127.0.0.1:{}", free_port());
        let k = Kura::builder(b).codecommit(CLOSED_ENDPOINT, Some(&dead)).initialized();
        k.add_user("alice", "alice-pw-123");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let target = "codecommit://us-east-1/app";
        // `mirror add` runs the first run at once: it fails, as a warning
        let add = k.cli(&["mirror", "add", "alice/app", target, "--create"]).run().assert_ok();
        assert_contains(&add.stderr, "CodeCommit unreachable", "mirror add");
        let t = Instant::now();
        let out = k.cli(&["mirror", "sync", "alice/app"]).run().assert_err();
        assert!(t.elapsed() < Duration::from_secs(30), "sync took {:?}", t.elapsed());
        assert_contains(&out.stderr, &format!("error: mirroring to {target} failed:"), "mirror sync");
        assert_contains(&out.stderr, "CodeCommit unreachable", "mirror sync");
        let st = status(&k, "alice/app");
        let e = status_field(&st, "last error:").expect("last error line");
        assert!(e.contains("unreachable"), "status shows the error:\n{st}");
        let runs = status_field(&st, "runs:").expect("runs line");
        let n = runs.split(' ').next().unwrap_or("?");
        assert_eq!(runs, format!("{n} ({n} failed)"), "every run failed:\n{st}");
        eprintln!("unreachable: {}", out.stderr.trim());
    }

    /// `--create` where CodeCommit refuses the credentials (moto checking IAM).
    fn codecommit_api_access_denied(b: Backend) {
        let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
        let k = Kura::builder(b).codecommit(CLOSED_ENDPOINT, Some(&moto.endpoint())).initialized();
        k.add_user("alice", "alice-pw-123");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let target = "codecommit://us-east-1/app";
        k.cli_ok(&["mirror", "add", "alice/app", target, "--create"]);
        let out = k.cli(&["mirror", "sync", "alice/app"]).run().assert_err();
        let msg = out.stderr.trim().to_string();
        eprintln!("access denied: {msg}");
        assert_contains(&msg, &format!("error: mirroring to {target} failed:"), "mirror sync");
        assert_contains(&msg, "GetRepository", "the refused call is named");
        // moto answers this JSON-protocol call with an XML error body (code in the
        // x-amzn-errortype header, HTTP 403), as a proxy or a VPC endpoint policy may too
        assert!(
            msg.contains("codecommit:GetRepository") || msg.contains("InvalidClientTokenId"),
            "the error should give the IAM permission hint or the refusal code (InvalidClientTokenId):\n{msg}"
        );
        assert!(!msg.contains(AWS_SECRET) && !msg.contains(AWS_KEY_ID), "{msg}");
        let st = status(&k, "alice/app");
        assert_ne!(status_field(&st, "last error:").as_deref(), Some("none"), "{st}");
        // (moto refuses boto3 here too, so whether anything was created cannot be asked.)
    }

    /// The remote is down for 20 pushes: every push succeeds fast and says `queued (`; once the
    /// remote is back the mirror catches up by itself.
    fn mirror_catches_up_after_remote_outage(b: Backend) {
        let mut cc = Standin::for_test_identity();
        let k = Kura::builder(b).codecommit(&cc.endpoint(), None).start();
        let tok = k.user_with_token("alice");
        let (url, src) = new_repo(&k, &tok, "app");
        let target = "codecommit://us-east-1/out";
        k.cli_ok(&["mirror", "add", "alice/app", target]);
        k.commit(&src, "n.txt", "start\n", "start");
        assert_mirrored(&push(&k, &src, &["origin", "main"]), target);

        cc.kill();
        let mut slowest = Duration::ZERO;
        for i in 0..20 {
            k.commit(&src, "n.txt", &format!("{i}\n"), &format!("push {i}"));
            let t = Instant::now();
            let err = push(&k, &src, &["origin", "main"]);
            let el = t.elapsed();
            slowest = slowest.max(el);
            // "queued (reason)" means the failed run answered the pusher; waiting out mirror_wait
            // would say "still running after 10s" instead (no timing asserted: the machine may be busy).
            assert_contains(&err, &format!("mirror to {target} queued ("), &format!("push {i} while the remote is down"));
        }
        eprintln!("remote down: slowest of 20 pushes {slowest:?}");
        let st = status(&k, "alice/app");
        assert_ne!(status_field(&st, "last error:").as_deref(), Some("none"), "{st}");

        cc.restart();
        let t = Instant::now();
        let st = wait_synced(&k, &url, &cc.bare("out"), "alice/app", Duration::from_secs(30));
        eprintln!("remote back: caught up in {:?}", t.elapsed());
        assert_contains(&st, "last error:    none", "status after catching up");
    }

    /// `kill -9` of Kura while a mirror push is in flight; after a restart on the same data the
    /// orphaned lease expires and the mirror ends identical and verified.
    fn mirror_resumes_after_kill9(b: Backend) {
        let cc = Standin::for_test_identity();
        let mut k = Kura::builder(b)
            .codecommit(&cc.endpoint(), None)
            .env("KURA_MIRROR_LEASE", "6s")
            .env("KURA_MIRROR_WAIT", "0s")
            .start();
        let tok = k.user_with_token("alice");
        let (url, src) = new_repo(&k, &tok, "app");
        let target = "codecommit://us-east-1/kill";
        k.cli_ok(&["mirror", "add", "alice/app", target]);
        k.commit(&src, "a.txt", "one\n", "first");
        let err = push(&k, &src, &["origin", "main"]);
        assert_contains(&err, &format!("mirror to {target} queued; see kura mirror status"), "push with KURA_MIRROR_WAIT=0s");
        wait_synced(&k, &url, &cc.bare("kill"), "alice/app", Duration::from_secs(20));

        cc.set_slow(true);
        let before = cc.push_count("kill");
        let c2 = k.commit(&src, "a.txt", "two\n", "second");
        push(&k, &src, &["origin", "main"]);
        wait_until(Duration::from_secs(20), "the mirror push reaches the stand-in", || cc.push_count("kill") > before);
        k.kill9();
        cc.set_slow(false);

        k.spawn();
        let t = Instant::now();
        let url = k.url_auth("alice", &tok, "alice/app.git");
        let st = wait_synced(&k, &url, &cc.bare("kill"), "alice/app", Duration::from_secs(40));
        eprintln!("after kill -9: caught up {:?} after the restart", t.elapsed());
        assert_contains(&st, "last error:    none", "status");
        assert_eq!(k.heads_and_tags(&cc.bare("kill").display().to_string()).get("refs/heads/main"), Some(&c2));
        assert_eq!(cc.overlaps(), "", "the restarted run must not overlap the orphaned one:\n{}", cc.pushes_log());
    }

    /// A user name and password for a generic remote never show up in plaintext: not in the
    /// log, the repository's config, the data folder (SQLite), the database (PostgreSQL), any
    /// process's command line during a mirror push, nor in errors.
    fn generic_remote_password_never_leaks(b: Backend) {
        const PW: &str = "S3cretMirrorPw!";
        const WRONG: &str = "WrongMirrorPw#42";
        let gr = Standin::basic(&format!("mirroruser:{PW}"));
        let k = Kura::builder(b).env("KURA_MIRROR_RETRY_MAX", "2s").start();
        let tok = k.user_with_token("alice");
        let (url, src) = new_repo(&k, &tok, "app");
        let target = format!("{}/target.git", gr.endpoint());
        k.cli(&["mirror", "add", "alice/app", &target, "--username", "mirroruser", "--password-stdin"])
            .stdin(format!("{PW}\n"))
            .run()
            .assert_ok();
        k.commit(&src, "a.txt", "one\n", "first");
        assert_mirrored(&push(&k, &src, &["origin", "main"]), &target);
        assert_same(&k, &url, &gr.bare("target"));

        // every process's command line while a mirror push is running
        gr.set_slow(true);
        k.commit(&src, "a.txt", "two\n", "second");
        let done = AtomicBool::new(false);
        let (err, leaks, samples, saw_git) = thread::scope(|s| {
            let h = s.spawn(|| {
                let r = push(&k, &src, &["origin", "main"]);
                done.store(true, Ordering::SeqCst);
                r
            });
            let mut leaks = Vec::new();
            let (mut samples, mut saw_git) = (0, 0);
            while !done.load(Ordering::SeqCst) {
                samples += 1;
                for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
                    let Ok(raw) = std::fs::read(e.path().join("cmdline")) else { continue };
                    let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                    if line.contains(PW) && !leaks.contains(&line) {
                        leaks.push(line.clone());
                    }
                    if line.contains("target.git") {
                        saw_git += 1;
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
            (h.join().expect("push thread"), leaks, samples, saw_git)
        });
        gr.set_slow(false);
        assert_mirrored(&err, &target);
        assert!(saw_git > 0, "sampled {samples} times but never saw the mirror's git push");
        assert!(leaks.is_empty(), "the password is in a command line: {leaks:?}");

        // files, logs, outputs
        let mut files = 0;
        for (p, _) in tree_snapshot(&k.data_dir, &[]) {
            if p.is_file() {
                files += 1;
                let bytes = std::fs::read(&p).unwrap_or_default();
                assert!(!bytes.windows(PW.len()).any(|w| w == PW.as_bytes()), "the password is in plaintext in {}", p.display());
            }
        }
        assert!(files > 0);
        let repos = bare_repos(&k.data_dir);
        assert_eq!(repos.len(), 1, "{repos:?}");
        let config = std::fs::read_to_string(repos[0].join("config")).expect("repository config");
        assert!(!config.contains(PW), "{config}");
        if b == Backend::Sqlite {
            let db = k.data_dir.join("kura.db");
            assert!(db.is_file(), "SQLite database at {}", db.display());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = k.data_dir.join("secret.key");
            let mode = std::fs::metadata(&key).expect("secret.key").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} mode {mode:o}", key.display());
        }
        assert!(!k.logs().contains(PW), "Kura's log contains the password");
        assert!(!k.stdout_text().contains(PW));
        for args in [vec!["mirror", "list"], vec!["mirror", "status", "alice/app"], vec!["config"]] {
            let out = k.cli(&args).run().assert_ok();
            assert!(!out.all().contains(PW), "kura {} shows the password:\n{}", args.join(" "), out.all());
        }
        if let Some(db) = k.pg_name() {
            let dump = cmd("pg_dump", &["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", db]).run().assert_ok();
            assert!(dump.stdout.contains("mirroruser"), "pg_dump has the mirror");
            assert!(!dump.stdout.contains(PW), "the password is in plaintext in the database (pg_dump)");
            let sel = cmd("psql", &["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", db, "-X", "-c", "select * from delivery_targets"])
                .run()
                .assert_ok();
            assert!(sel.stdout.contains("mirroruser"), "{}", sel.stdout);
            assert!(!sel.stdout.contains(PW), "select * from delivery_targets shows the password:\n{}", sel.stdout);
        }

        // a wrong password: queued, and the error does not repeat it
        let (_url2, src2) = new_repo(&k, &tok, "app2");
        let target2 = format!("{}/target2.git", gr.endpoint());
        k.cli(&["mirror", "add", "alice/app2", &target2, "--username", "mirroruser", "--password-stdin"])
            .stdin(format!("{WRONG}\n"))
            .run()
            .assert_ok();
        k.commit(&src2, "a.txt", "x\n", "x");
        let err = push(&k, &src2, &["origin", "main"]);
        assert_contains(&err, &format!("mirror to {target2} queued ("), "push with a wrong mirror password");
        assert!(!err.contains(WRONG) && !err.contains(PW), "{err}");
        let st = status(&k, "alice/app2");
        let e = status_field(&st, "last error:").expect("last error");
        assert_ne!(e, "none", "{st}");
        assert!(!st.contains(WRONG), "{st}");
        assert!(!k.logs().contains(WRONG), "Kura's log contains the wrong password");
        eprintln!("wrong password: last error: {e}");
    }

    /// `/metrics`: mirror figures for a site admin's token, 401 without a token.
    fn mirror_metrics(b: Backend) {
        let gr = Standin::basic("mu:mp-123456");
        let k = Kura::start(b);
        let tok = k.user_with_token("alice");
        let (_url, src) = new_repo(&k, &tok, "app");
        let target = format!("{}/m.git", gr.endpoint());
        k.cli(&["mirror", "add", "alice/app", &target, "--username", "mu", "--password-stdin"])
            .stdin("mp-123456\n")
            .run()
            .assert_ok();
        k.commit(&src, "a.txt", "one\n", "first");
        assert_mirrored(&push(&k, &src, &["origin", "main"]), &target);
        let admin = k.token("admin", "admin");
        let r = k.req("GET", "/metrics").bearer(&admin).send();
        assert_eq!(r.status, 200, "{}", r.describe());
        let text = r.text();
        assert_contains(&text, "kura_mirror_runs_total{repo=\"alice/app\"", "/metrics");
        assert_contains(&text, "kura_mirror_lag_seconds", "/metrics");
        assert_contains(&text, &format!("mirror=\"{target}\""), "/metrics");
        assert!(!text.contains("mp-123456"));
        let r = k.req("GET", "/metrics").send();
        assert_eq!(r.status, 401, "{}", r.describe());
        let r = k.req("GET", "/metrics").bearer(&tok).send();
        assert_eq!(r.status, 403, "a non-admin token: {}", r.describe());
    }
}

/// Two `kura serve` on one PostgreSQL database and data folder, pushes alternating between
/// them, the remote slow for half of them: never two pushes to the remote at once, and the
/// remote ends identical.
#[test]
fn two_servers_one_mirror_no_overlap() {
    let cc = Standin::for_test_identity();
    let a = Kura::builder(Backend::Postgres)
        .codecommit(&cc.endpoint(), None)
        .env("KURA_MIRROR_WAIT", "0s")
        .start();
    let tok = a.user_with_token("alice");
    let (url_a, src) = new_repo(&a, &tok, "app");
    let target = "codecommit://us-east-1/two";
    a.cli_ok(&["mirror", "add", "alice/app", target]);
    let b = a.sibling(&[("KURA_MIRROR_WAIT", "5s")]);
    let url_b = b.url_auth("alice", &tok, "alice/app.git");
    a.git_ok(&src, &["remote", "add", "b", &url_b]);

    let t = Instant::now();
    for i in 0..12 {
        if i == 0 {
            cc.set_slow(true);
        }
        if i == 6 {
            cc.set_slow(false);
        }
        a.commit(&src, "n.txt", &format!("{i}\n"), &format!("push {i}"));
        let remote = if i % 2 == 0 { "origin" } else { "b" };
        let err = push(&a, &src, &[remote, "main"]);
        assert!(
            err.contains(&format!("mirrored to {target} ("))
                || err.contains(&format!("mirror to {target} queued; see"))
                || err.contains(&format!("mirror to {target} still running after")),
            "push {i} via {remote}: unexpected mirror report:\n{err}"
        );
    }
    eprintln!("two servers: 12 pushes in {:?}", t.elapsed());
    wait_synced(
        &a,
        &url_a,
        &cc.bare("two"),
        "alice/app",
        Duration::from_secs(60),
    );
    assert_eq!(
        cc.overlaps(),
        "",
        "two mirror pushes ran at once:\n{}",
        cc.pushes_log()
    );
    let runs = |k: &Kura| k.logs().matches("mirror run started").count();
    eprintln!(
        "two servers: {} remote pushes; runs started by A: {}, by B: {}",
        cc.push_count("two"),
        runs(&a),
        runs(&b)
    );
}

/// 50 pushes to one mirrored repository (CodeCommit stand-in, SQLite): prints the `in X s`
/// figures the pushers read (p50, p95); asserts only that every push was mirrored.
#[test]
fn mirror_latency_50_pushes() {
    let cc = Standin::for_test_identity();
    let k = Kura::builder(Backend::Sqlite)
        .codecommit(&cc.endpoint(), None)
        .start();
    let tok = k.user_with_token("alice");
    let (url, src) = new_repo(&k, &tok, "app");
    let target = "codecommit://us-east-1/lat";
    k.cli_ok(&["mirror", "add", "alice/app", target]);
    // let the first run (queued by `mirror add`) finish, so it does not count
    k.commit(&src, "n.txt", "start\n", "start");
    push(&k, &src, &["origin", "main"]);

    let mut figures = Vec::new();
    let mut walls = Vec::new();
    for i in 0..50 {
        let c = k.commit(&src, "n.txt", &format!("{i}\n"), &format!("push {i}"));
        let t = Instant::now();
        let err = push(&k, &src, &["origin", "main"]);
        walls.push(t.elapsed().as_secs_f64());
        let (summary, secs) = assert_mirrored(&err, target);
        assert_eq!(summary, format!("main {}", short(&c)), "push {i}");
        figures.push(secs);
    }
    assert_eq!(figures.len(), 50);
    assert_same(&k, &url, &cc.bare("lat"));
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    };
    eprintln!(
        "mirror latency p50={:.1}s p95={:.1}s max={:.1}s (reported `in X s`, 50 pushes, CodeCommit stand-in, SQLite); \
         whole git push p50={:.2}s p95={:.2}s",
        pct(&mut figures, 0.5),
        pct(&mut figures, 0.95),
        figures.last().copied().unwrap_or(0.0),
        pct(&mut walls, 0.5),
        pct(&mut walls, 0.95),
    );
}
