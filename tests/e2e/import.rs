//! `kura repo import` and `import-many` from a real `git http-backend` with Basic auth (the
//! stand-in in tests/codecommit_standin.py) and from local paths.

use std::time::Duration;

use crate::harness::*;

const TOKEN: &str = "glpat-import-token-123";

/// A source repository at `bare`: main and develop, a tag, HEAD on develop.
fn make_source(k: &Kura, bare: &std::path::Path) {
    let dir = k.init_repo("source", "https://unused.invalid/x.git");
    k.commit(&dir, "README.md", "hello\n", "first");
    k.git_ok(&dir, &["tag", "-a", "v1.0", "-m", "release 1.0"]);
    k.git_ok(&dir, &["checkout", "-q", "-b", "develop"]);
    k.commit(&dir, "src/lib.rs", "pub fn f() {}\n", "on develop");
    let bare_s = bare.display().to_string();
    k.git_ok(
        &k.work,
        &[
            "clone",
            "-q",
            "--bare",
            dir.to_str().expect("utf-8 path"),
            &bare_s,
        ],
    );
    k.git_ok(
        &k.work,
        &[
            "--git-dir",
            &bare_s,
            "symbolic-ref",
            "HEAD",
            "refs/heads/develop",
        ],
    );
}

fn repo_names(k: &Kura) -> String {
    k.cli_ok(&["repo", "list"])
}

both! {
    fn import_from_a_git_server_with_basic_auth(b: Backend) {
        let gr = Standin::basic(&format!("gl:{TOKEN}"));
        let k = Kura::start(b);
        k.cli_ok(&["group", "add", "team"]);
        make_source(&k, &gr.bare("app"));
        let from = format!("{}/app.git", gr.endpoint());
        let import = |name: &str, pw: Option<&str>| {
            let mut args = vec!["repo", "import", name, "--from", &from];
            if pw.is_some() {
                args.extend(["--username", "gl", "--password-stdin"]);
            }
            let c = k.cli(&args);
            match pw {
                Some(p) => c.stdin(format!("{p}\n")),
                None => c,
            }
            .run()
        };

        // refused credentials, and none: said so, nothing created
        let err = import("team/app", Some("wrong-token-1")).assert_err().stderr;
        assert_contains(&err, "the source refused the user name and password", "wrong token");
        assert!(!err.contains("wrong-token-1"), "the password is not shown: {err}");
        let err = import("team/app", None).assert_err().stderr;
        assert_contains(&err, "the source wants credentials: give --username and --password-stdin", "no token");
        assert!(!repo_names(&k).contains("team/app"), "a refused import created the repository");
        // credentials in the URL are refused before anything is contacted
        let with_creds = from.replacen("http://", &format!("http://gl:{TOKEN}@"), 1);
        let err = k.cli_err(&["repo", "import", "team/app", "--from", &with_creds]);
        assert_contains(&err, "--username", "says where credentials go");
        assert!(!err.contains(TOKEN), "{err}");

        let out = import("team/app", Some(TOKEN)).assert_ok();
        assert_eq!(out.stdout.trim(), format!("{}/team/app.git", k.base()), "prints the clone URL");
        assert_contains(&out.stderr, "imported 2 branches and 1 tags into team/app (default branch develop)", "summary");
        assert!(!out.stderr.contains(TOKEN) && !k.logs().contains(TOKEN), "the token leaked");
        let kura_url = k.url_auth("admin", ADMIN_PASSWORD, "team/app.git");
        assert_eq!(k.heads_and_tags(&kura_url), k.heads_and_tags(&gr.bare("app").display().to_string()), "every branch and tag, the same ids");
        let clone = k.clone_repo(&kura_url, "checkout");
        assert_eq!(k.git_ok(&clone, &["branch", "--show-current"]).trim(), "develop", "HEAD follows the source's");
        assert!(clone.join("src/lib.rs").exists());
        let show = k.cli_ok(&["repo", "show", "team/app"]);
        assert_contains(&show, "visibility:     private", "private unless --public");
        assert_contains(&show, "1 pack(s), 0 loose", "packed for serving");

        // not into a repository that has refs; into an empty one, yes
        let err = import("team/app", Some(TOKEN)).assert_err().stderr;
        assert_contains(&err, "already has 3 branches or tags: import only into a new or empty repository", "non-empty");
        k.cli_ok(&["repo", "create", "team/empty"]);
        // its mirror gets what the import brought
        let target = format!("{}/copy.git", gr.endpoint());
        k.cli(&["mirror", "add", "team/empty", &target, "--username", "gl", "--password-stdin"])
            .stdin(format!("{TOKEN}\n"))
            .run()
            .assert_ok();
        let out = import("team/empty", Some(TOKEN)).assert_ok();
        assert_contains(&out.stderr, "1 mirror(s) queued", "the mirror is queued");
        let imported = k.heads_and_tags(&k.url_auth("admin", ADMIN_PASSWORD, "team/empty.git"));
        assert_eq!(imported.len(), 3);
        wait_until(Duration::from_secs(60), "the mirror receives the imported refs", || {
            k.heads_and_tags(&gr.bare("copy").display().to_string()) == imported
        });
        // no such namespace: said before the source is asked
        let err = import("nobody/app", Some(TOKEN)).assert_err().stderr;
        assert_contains(&err, "no user or group named \"nobody\"", "namespace");
    }
}

/// A source whose refs can be listed but whose objects cannot be fetched: the import fails and
/// the repository it created is gone again.
#[test]
fn a_failed_fetch_leaves_nothing() {
    let k = Kura::start(Backend::Sqlite);
    let bare = k.root.join("broken.git");
    make_source(&k, &bare);
    let _ = std::fs::remove_dir_all(bare.join("objects"));
    std::fs::create_dir_all(bare.join("objects/pack")).expect("mkdir");
    let import = |name: &str, from: &str| {
        k.cli(&["repo", "import", name, "--from", from])
            .run()
            .assert_err()
            .stderr
    };
    let err = import("admin/broken", bare.to_str().expect("utf-8"));
    assert_contains(&err, "importing from", "says the import failed");
    assert!(
        !repo_names(&k).contains("admin/broken"),
        "the failed import left its repository"
    );
    // a missing source, and a transport that is not allowed
    let err = import("admin/x", "/nonexistent/x.git");
    assert_contains(&err, "no repository at that URL", "missing path");
    let err = import("admin/x", "ext::sh -c id");
    assert_contains(
        &err,
        "neither an http(s):// URL nor an absolute path",
        "ext:: refused",
    );
    assert!(!repo_names(&k).contains("admin/x"));
}

both! {
    fn import_many_goes_on_past_failures(b: Backend) {
        let gr = Standin::basic(&format!("gl:{TOKEN}"));
        let k = Kura::start(b);
        k.cli_ok(&["group", "add", "team"]);
        make_source(&k, &gr.bare("one"));
        let list = k.root.join("projects.txt");
        // a list that does not read: nothing is imported, every bad line is named
        std::fs::write(&list, format!("team/one {}/one.git\nno-slash http://x/y.git\nteam/two\n", gr.endpoint())).expect("write");
        let err = k.cli_err_stdin(&["repo", "import-many", list.to_str().expect("utf-8"), "--username", "gl", "--password-stdin"], &format!("{TOKEN}\n"));
        assert_contains(&err, "line 2:", "the bad name");
        assert_contains(&err, "line 3: expected `NAMESPACE/NAME URL`", "the missing URL");
        assert_contains(&err, "nothing was imported", "checked first");
        assert!(!repo_names(&k).contains("team/one"));

        std::fs::write(&list, format!(
            "# from GitLab\nteam/one {ep}/one.git\n\nteam/gone /nonexistent/gone.git\nteam/fresh {ep}/fresh.git\n",
            ep = gr.endpoint()
        )).expect("write");
        let out = k.cli(&["repo", "import-many", list.to_str().expect("utf-8"), "--username", "gl", "--password-stdin"])
            .stdin(format!("{TOKEN}\n"))
            .run()
            .assert_err();
        assert_contains(&out.stdout, "imported 2 of 3 repositories", "summary");
        assert_contains(&out.stderr, "[1/3] team/one from", "progress");
        assert_contains(&out.stderr, "1 of 3 imports failed", "the failure is counted");
        assert_contains(&out.stderr, "team/gone:", "and named");
        let repos = repo_names(&k);
        assert!(repos.contains("team/one") && repos.contains("team/fresh") && !repos.contains("team/gone"), "{repos}");
        assert_eq!(k.heads_and_tags(&k.url_auth("admin", ADMIN_PASSWORD, "team/one.git")).len(), 3);
        assert!(!out.stderr.contains(TOKEN) && !out.stdout.contains(TOKEN));
    }
}

/// A shallow clone as the source: git would leave its refs out (and say success), so the import
/// is refused and leaves nothing, whether the source is a local path or a Git server.
#[test]
fn a_shallow_source_is_refused() {
    let gr = Standin::basic(&format!("gl:{TOKEN}"));
    let k = Kura::start(Backend::Sqlite);
    let full = k.root.join("full.git");
    make_source(&k, &full);
    let shallow = gr.bare("shallow");
    k.git_ok(
        &k.work,
        &[
            "clone",
            "-q",
            "--bare",
            "--depth",
            "1",
            &format!("file://{}", full.display()),
            shallow.to_str().expect("utf-8"),
        ],
    );
    let err = k
        .cli(&[
            "repo",
            "import",
            "admin/local",
            "--from",
            shallow.to_str().expect("utf-8"),
        ])
        .run()
        .assert_err()
        .stderr;
    assert_contains(&err, "is a shallow clone", "a local shallow source");
    let from = format!("{}/shallow.git", gr.endpoint());
    let err = k
        .cli(&[
            "repo",
            "import",
            "admin/remote",
            "--from",
            &from,
            "--username",
            "gl",
            "--password-stdin",
        ])
        .stdin(format!("{TOKEN}\n"))
        .run()
        .assert_err()
        .stderr;
    assert_contains(&err, "git did not take", "a shallow source behind a server");
    assert_contains(&err, "shallow", "names the likely reason");
    let repos = repo_names(&k);
    assert!(
        !repos.contains("admin/local") && !repos.contains("admin/remote"),
        "{repos}"
    );
}
