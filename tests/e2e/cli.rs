//! `kura config` redaction and CLI error handling.

use crate::harness::*;

both! {
    fn config_redacts_admin_password(b: Backend) {
        let k = Kura::builder(b).prepare();
        let out = k.cli_ok(&["config"]);
        assert_contains(&out, "admin_password", "kura config lists admin_password");
        assert!(!out.contains(ADMIN_PASSWORD), "kura config shows the admin password:\n{out}");
        assert_contains(&out, &k.data_dir.display().to_string(), "kura config shows the data dir from KURA_DATA_DIR");
        assert_contains(&out, "database_url", "kura config lists database_url");
        if b == Backend::Postgres {
            assert_contains(&out, "kura_t_", "kura config shows the database name");
        }
        assert_contains(&out, "127.0.0.1:0", "listen from KURA_LISTEN");
    }

    fn cli_errors(b: Backend) {
        let k = Kura::start(b);
        k.add_user("alice", "alice-pass-123");
        k.cli_ok(&["repo", "create", "alice/app"]);
        k.cli_ok(&["group", "add", "team"]);

        // unknown user
        k.cli_err(&["token", "create", "nobody", "--scope", "read"]);
        k.cli_err(&["user", "disable", "nobody"]);
        k.cli_err(&["grant", "alice/app", "nobody", "--role", "read"]);
        k.cli_err(&["group", "member", "add", "team", "nobody", "--role", "read"]);
        k.cli_err(&["token", "list", "nobody"]);
        // duplicates
        let err = k.cli_err(&["repo", "create", "alice/app"]);
        assert!(err.contains("alice/app"), "duplicate repo error should name it:\n{err}");
        k.cli_err_stdin(&["user", "add", "alice", "--password-stdin"], "another-pass-123\n");
        k.cli_err(&["group", "add", "team"]);
        k.cli_err(&["group", "add", "alice"]); // a user's namespace
        // bad roles and scopes
        k.cli_err(&["group", "member", "add", "team", "alice", "--role", "superuser"]);
        k.cli_err(&["grant", "alice/app", "alice", "--role", "boss"]);
        k.cli_err(&["token", "create", "alice", "--scope", "root"]);
        k.cli_err(&["token", "create", "alice", "--scope", "read", "--expires-in", "soon"]);
        // missing things
        k.cli_err(&["repo", "create", "nobody/x"]);
        k.cli_err(&["repo", "delete", "alice/nope"]);
        k.cli_err(&["repo", "rename", "alice/nope", "alice/other"]);
        k.cli_err(&["grant", "alice/nope", "alice", "--role", "read"]);
        k.cli_err(&["protect", "alice/nope", "main"]);
        k.cli_err(&["token", "revoke", "999999"]);
        k.cli_err(&["repo", "create", "noslash"]);
        // rename onto an existing repository
        k.cli_ok(&["repo", "create", "alice/other"]);
        k.cli_err(&["repo", "rename", "alice/app", "alice/other"]);
        // an empty password on stdin
        k.cli_err_stdin(&["user", "add", "bob", "--password-stdin"], "\n");

        // nothing above changed the state
        let users = k.cli_ok(&["user", "list"]);
        assert!(!users.contains("nobody") && !users.contains("bob"), "user list:\n{users}");
        let repos = k.cli_ok(&["repo", "list"]);
        assert!(repos.contains("alice/app") && repos.contains("alice/other") && !repos.contains("nobody"), "repo list:\n{repos}");

        // without --password-stdin a generated password is printed, alone, and works
        let out = k.cli_ok(&["user", "add", "carol"]);
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "user add must print only the password: {out:?}");
        let pw = lines[0].trim();
        assert!(pw.len() >= 12, "generated password too short: {pw:?}");
        k.cli_ok(&["repo", "create", "carol/x"]);
        let r = k.req("GET", "/carol/x.git/info/refs?service=git-upload-pack").basic("carol", pw).send();
        assert_eq!(r.status, 200, "generated password works: {}", r.describe());
        // and `user passwd` without stdin prints a new one
        let out = k.cli_ok(&["user", "passwd", "carol"]);
        let pw2 = out.trim();
        assert_eq!(out.trim().lines().count(), 1, "user passwd prints only the password: {out:?}");
        assert_ne!(pw, pw2);
        assert_eq!(k.req("GET", "/carol/x.git/info/refs?service=git-upload-pack").basic("carol", pw2).send().status, 200);
        assert!(!k.logs().contains(pw2), "log contains a generated password");
    }
}

/// `kura config` hides the password inside the database URL (no database needed).
#[test]
fn config_redacts_database_url_password() {
    let k = Kura::builder(Backend::Sqlite)
        .env("KURA_DATABASE_URL", "postgres://u:secretpw@127.0.0.1/db")
        .prepare();
    let out = k.cli_ok(&["config"]);
    assert!(
        !out.contains("secretpw"),
        "kura config shows the database password:\n{out}"
    );
    assert_contains(&out, "127.0.0.1", "the rest of the database URL is shown");
    assert!(
        !out.contains(ADMIN_PASSWORD),
        "kura config shows the admin password:\n{out}"
    );
}

/// A `kura.toml` in the working directory is read; the environment overrides it.
#[test]
fn config_file_then_environment() {
    let k = Kura::builder(Backend::Sqlite).prepare();
    std::fs::write(
        k.root.join("kura.toml"),
        "auth_max_failures = 7\nshutdown_grace = \"12s\"\nlisten = \"127.0.0.1:4999\"\n",
    )
    .expect("write kura.toml");
    let out = k.cli_ok(&["config"]);
    assert_contains(&out, "auth_max_failures = 7", "value from ./kura.toml");
    assert_contains(&out, "127.0.0.1:0", "KURA_LISTEN overrides kura.toml");
    assert!(
        !out.contains("4999"),
        "KURA_LISTEN must override kura.toml:\n{out}"
    );
}

both! {
    fn repo_set_changes_default_branch_and_visibility(b: Backend) {
        let k = Kura::start(b);
        let (_tok, url, dir) = k.alice_app();
        k.commit(&dir, "a.txt", "a\n", "first");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        k.git_ok(&dir, &["checkout", "-q", "-b", "dev"]);
        let dev = k.commit(&dir, "b.txt", "b\n", "on dev");
        k.git_ok(&dir, &["push", "-q", "origin", "dev"]);
        // deleting the default branch points at the command that changes it
        let err = k.git_err(&dir, &["push", "origin", ":main"]);
        assert_contains(&err, "kura repo set alice/app --default-branch", "the refusal says how");

        let err = k.cli_err(&["repo", "set", "alice/app"]);
        assert_contains(&err, "nothing to change", "no flags");
        let err = k.cli_err(&["repo", "set", "alice/app", "--default-branch", "bad..name"]);
        assert_contains(&err, "bad..name", "an invalid branch name is refused");
        let err = k.cli(&["repo", "set", "alice/app", "--public", "--private"]).run().assert_err();
        assert_contains(&err.stderr, "cannot be used with", "clap refuses both");

        let out = k.cli(&["repo", "set", "alice/app", "--default-branch", "dev", "--public"]).run().assert_ok();
        assert_contains(&out.stderr, "alice/app: default branch dev, public", "what it did");
        // anonymous clones now work and check out dev
        let anon = k.clone_repo(&k.url("alice/app.git"), "anon");
        assert_eq!(k.rev(&anon, "HEAD"), dev);
        // main may go now; dev may not
        k.git_ok(&dir, &["push", "-q", &url, ":main"]);
        let out = k.cli(&["repo", "set", "alice/app", "--private"]).run().assert_ok();
        assert_contains(&out.stderr, "alice/app: default branch dev, private", "private again");
        let r = k.get("/alice/app.git/info/refs?service=git-upload-pack");
        assert_eq!(r.status, 401, "private: anonymous reads are challenged: {}", r.describe());
    }
}

both! {
    fn group_list_and_show(b: Backend) {
        let k = Kura::start(b);
        k.add_user("alice", "alice-pass-123");
        k.add_user("bob", "bob-pass-1234");
        k.cli_ok(&["group", "add", "payments"]);
        k.cli_ok(&["group", "add", "empty-team"]);
        k.cli_ok(&["group", "member", "add", "payments", "alice", "--role", "write"]);
        k.cli_ok(&["group", "member", "add", "payments", "bob", "--role", "admin"]);
        k.cli_ok(&["repo", "create", "payments/app"]);
        k.cli_ok(&["repo", "create", "payments/site", "--public"]);
        k.cli_ok(&["repo", "create", "alice/own"]);

        let list = k.cli_ok(&["group", "list"]);
        let line = |name: &str| {
            list.lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("{name} not in `kura group list`:\n{list}"))
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(line("payments"), ["payments", "2", "2"], "members and repositories");
        assert_eq!(line("empty-team"), ["empty-team", "0", "0"]);
        assert!(!list.contains("alice"), "user namespaces are not groups:\n{list}");

        let show = k.cli_ok(&["group", "show", "Payments"]);
        for want in ["group payments", "members (2):", "alice", "write", "bob", "admin",
                     "repositories (2):", "payments/app", "private", "payments/site", "public"] {
            assert_contains(&show, want, "kura group show");
        }
        assert!(!show.contains("alice/own"), "only the group's repositories:\n{show}");
        assert_contains(&k.cli_err(&["group", "show", "nope"]), "no group named", "unknown group");
        assert_contains(&k.cli_err(&["group", "show", "alice"]), "is a user, not a group", "a user");
    }
}

both! {
    fn user_and_group_delete(b: Backend) {
        let k = Kura::start(b);
        let tok = k.user_with_token("bob");
        k.cli_ok(&["group", "add", "team"]);
        k.cli_ok(&["group", "member", "add", "team", "bob", "--role", "write"]);
        k.cli_ok(&["repo", "create", "team/app"]);
        k.cli_ok(&["repo", "create", "bob/own"]);
        let r = k.req("GET", "/team/app.git/info/refs?service=git-upload-pack").basic("bob", &tok).send();
        assert_eq!(r.status, 200, "{}", r.describe());

        let err = k.cli_err(&["user", "delete", "bob"]);
        assert_contains(&err, "bob/own", "names what is in the way");
        let err = k.cli_err(&["group", "delete", "team"]);
        assert_contains(&err, "team/app", "names what is in the way");
        assert_contains(&k.cli_err(&["group", "delete", "bob"]), "is a user, not a group", "a user");
        assert_contains(&k.cli_err(&["user", "delete", "admin"]), "last enabled site admin", "the last admin stays");

        k.cli_ok(&["repo", "delete", "bob/own"]);
        k.cli(&["user", "delete", "bob"]).run().assert_ok();
        let r = k.req("GET", "/team/app.git/info/refs?service=git-upload-pack").basic("bob", &tok).send();
        assert_eq!(r.status, 401, "the deleted user's token is gone: {}", r.describe());
        assert!(!k.cli_ok(&["user", "list"]).contains("bob"), "bob is gone");
        assert_contains(&k.cli_ok(&["group", "show", "team"]), "members (0):", "the membership went too");
        // the name is free again
        k.add_user("bob", "bob-pass-1234");

        k.cli_ok(&["repo", "delete", "team/app"]);
        k.cli(&["group", "delete", "team"]).run().assert_ok();
        assert_contains(&k.cli_err(&["group", "show", "team"]), "no group named", "gone");
    }
}

both! {
    fn user_add_says_the_name_is_taken_before_judging_the_password(b: Backend) {
        let k = Kura::start(b);
        k.add_user("alice", "alice-pass-123");
        let err = k.cli_err_stdin(&["user", "add", "alice", "--password-stdin"], "x\n");
        assert_contains(&err, "already exists", "the name is taken");
        assert!(!err.contains("too short"), "not about the password: {err}");
        k.cli_ok(&["group", "add", "team"]);
        let err = k.cli_err_stdin(&["user", "add", "Team", "--password-stdin"], "long-enough-1\n");
        assert_contains(&err, "already exists", "a group has the name");
    }
}

/// PostgreSQL errors say once what is wrong and what to do.
#[test]
fn postgres_connection_errors_say_what_to_do() {
    let k = Kura::builder(Backend::Sqlite).prepare();
    let missing = "postgres://postgres@127.0.0.1:5432/kura_no_such_database";
    let err = k
        .cli(&["user", "list"])
        .env("KURA_DATABASE_URL", missing)
        .run()
        .assert_err()
        .stderr;
    assert_contains(
        &err,
        "the database kura_no_such_database does not exist",
        "missing database",
    );
    assert_contains(&err, "createdb", "says how to create it");
    assert_eq!(err.matches("does not exist").count(), 1, "said once: {err}");
    let closed = format!("postgres://postgres:secret-pw@127.0.0.1:{}/x", free_port());
    let err = k
        .cli(&["user", "list"])
        .env("KURA_DATABASE_URL", &closed)
        .run()
        .assert_err()
        .stderr;
    assert_contains(
        &err,
        "cannot connect to PostgreSQL at 127.0.0.1:",
        "names host and port",
    );
    assert!(
        !err.contains("secret-pw"),
        "no password in the message: {err}"
    );
}

/// A misspelt setting, a value that cannot work or a duration without a unit is refused by
/// `kura config` and `kura serve` alike, before anything is created.
#[test]
fn configuration_refuses_what_it_does_not_understand() {
    let k = Kura::builder(Backend::Sqlite).prepare();
    let toml = k.root.join("kura.toml");
    std::fs::write(&toml, "lisen = \"127.0.0.1:3000\"\n").expect("write kura.toml");
    for cmd in [&["config"][..], &["serve"][..], &["user", "list"][..]] {
        let err = k.cli_err(cmd);
        assert_contains(
            &err,
            "lisen is not a Kura setting; did you mean listen?",
            "a misspelt key",
        );
    }
    std::fs::write(&toml, "listen = 3000\n").expect("write kura.toml");
    let err = k
        .cli(&["serve"])
        .env_remove("KURA_LISTEN")
        .run()
        .assert_err()
        .stderr;
    assert_contains(
        &err,
        "listen \"3000\" is not an address with a port",
        "listen = 3000",
    );
    assert_contains(&err, "0.0.0.0:3000", "says how to write it");
    std::fs::remove_file(&toml).expect("remove kura.toml");
    for (var, value, says) in [
        (
            "KURA_LISEN",
            "127.0.0.1:3000",
            "KURA_LISEN is not a Kura setting; did you mean KURA_LISTEN?",
        ),
        (
            "KURA_LISTEN",
            "localhost",
            "listen \"localhost\" is not an address with a port",
        ),
        (
            "KURA_AUTH_FAILURE_WINDOW",
            "5",
            "KURA_AUTH_FAILURE_WINDOW: \"5\" has no unit: write 5s",
        ),
        ("KURA_SESSION_TTL", "1000y", "longer than 3650d"),
        (
            "KURA_PUBLIC_URL",
            "git.corp.example",
            "public_url \"git.corp.example\" is not a URL",
        ),
    ] {
        for cmd in [&["config"][..], &["serve"][..]] {
            let err = k.cli(cmd).env(var, value).run().assert_err().stderr;
            assert_contains(&err, says, var);
        }
    }
    assert!(
        !k.data_dir.exists(),
        "a refused configuration created the data folder {}",
        k.data_dir.display()
    );
    // durations print the way they are written
    let out = k.cli_ok(&["config"]);
    for line in [
        "mirror_lease = \"60s\"",
        "maintenance_interval = \"24h\"",
        "session_ttl = \"7d\"",
        "auth_failure_window = \"5m\"",
    ] {
        assert_contains(&out, line, "kura config");
    }
}

both! {
    /// Token lifetimes follow the one duration rule, with a range, in the CLI and the API.
    fn token_lifetimes_need_a_unit_and_a_range(b: Backend) {
        let k = Kura::start(b);
        k.add_user("alice", "alice-pass-123");
        for (value, says) in [
            ("90", "\"90\" has no unit: write 90s, 90m, 90h or 90d"),
            ("-5d", "\"-5d\" is negative"),
            ("1000y", "longer than 3650d (ten years)"),
            ("0s", "no time at all"),
        ] {
            let out = k.cli(&["token", "create", "alice", "--scope", "read", "--expires-in", value]).run().assert_err();
            assert_contains(&out.stderr, says, value);
        }
        assert!(k.cli_ok(&["token", "list", "alice"]).lines().count() == 1, "no token was made");
        let tok = k.token("alice", "write");
        let r = k.req("POST", "/api/v1/users/alice/tokens").bearer(&tok)
            .json(&serde_json::json!({"scope": "read", "expires_in": "90"})).send();
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_contains(&r.text(), "has no unit", "the API says the same");
        let out = k.cli(&["token", "create", "alice", "--scope", "read", "--expires-in", "90d"]).run().assert_ok();
        assert_contains(&out.stderr, "expires 20", "a date 90 days ahead");
    }
}

both! {
    /// Commands other than `serve` never create a data folder: they say where they looked.
    fn commands_other_than_serve_need_the_data_folder(b: Backend) {
        let k = Kura::builder(b).prepare();
        let err = k.cli_err(&["user", "list"]);
        assert_contains(&err, &format!("no Kura data folder at {}", k.data_dir.display()), "where it looked");
        assert_contains(&err, "--data-dir DIR, KURA_DATA_DIR=DIR or --config FILE", "how to point at it");
        assert!(!k.data_dir.exists(), "user list created {}", k.data_dir.display());
        let elsewhere = k.root.join("elsewhere");
        let err = k.cli(&["repo", "list"]).env("KURA_DATA_DIR", &elsewhere).run().assert_err().stderr;
        assert_contains(&err, &format!("no Kura data folder at {}", elsewhere.display()), "KURA_DATA_DIR");
        assert!(!elsewhere.exists(), "repo list created {}", elsewhere.display());
        // once `serve` made it, the same command works
        let mut k = k;
        k.spawn();
        assert_contains(&k.cli_ok(&["user", "list"]), "admin", "after serve");
    }
}

/// One `kura serve` per SQLite data folder; the lock goes with the process, even after kill -9.
#[test]
fn a_second_serve_on_one_sqlite_folder_is_refused() {
    let mut k = Kura::start(Backend::Sqlite);
    let pid = k.pid();
    let err = k.cli(&["serve"]).run().assert_err().stderr;
    assert_contains(
        &err,
        &format!("another kura serve (pid {pid}) already uses the data folder"),
        "names the holder",
    );
    assert_contains(
        &err,
        "need PostgreSQL",
        "says what to do for several servers",
    );
    assert!(k.is_running(), "the first server keeps running");
    k.kill9();
    k.spawn();
    k.add_user("alice", "alice-pass-123");
}

/// Clone URLs printed by the CLI are where the server listens, or `public_url`.
#[test]
fn printed_clone_urls_name_the_server() {
    let k = Kura::start(Backend::Sqlite);
    k.add_user("alice", "alice-pass-123");
    let out = k.cli_ok(&["repo", "create", "alice/app"]);
    assert_eq!(
        out.trim(),
        format!("{}/alice/app.git", k.base()),
        "the listening address"
    );
    let out = k
        .cli(&["repo", "create", "alice/site"])
        .env("KURA_PUBLIC_URL", "https://git.corp.example/")
        .run()
        .assert_ok()
        .stdout;
    assert_eq!(out.trim(), "https://git.corp.example/alice/site.git");
}

/// A SIGTERM that comes as soon as the server says it listens is a clean stop (exit 0), not a
/// kill: the signal handlers are in place before the announcement.
#[test]
fn sigterm_right_after_start_is_a_clean_stop() {
    let mut k = Kura::builder(Backend::Sqlite).prepare();
    for _ in 0..5 {
        k.spawn();
        let st = k.stop_sigterm();
        assert!(
            st.success(),
            "kura serve exited with {st} after an early SIGTERM\n{}",
            k.logs()
        );
    }
}

both! {
    /// `kura check` after a restore gone wrong: a repository without its folder, one whose
    /// refs point at missing objects, and a folder no repository owns.
    fn check_finds_what_the_database_and_the_folders_disagree_on(b: Backend) {
        let k = Kura::start(b);
        let (_tok, _url, dir) = k.alice_app();
        k.commit(&dir, "a.txt", "a\n", "first");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        k.cli_ok(&["repo", "create", "alice/empty"]);
        let out = k.cli_ok(&["check"]);
        assert_contains(&out, "checked 2 repositories: the database and the repositories agree", "all well");

        let storage = |name: &str| -> std::path::PathBuf {
            let show = k.cli_ok(&["repo", "show", name]);
            let line = show.lines().find(|l| l.starts_with("storage:")).expect("a storage line");
            line.trim_start_matches("storage:").trim().into()
        };
        // a folder left by a repository the database no longer lists
        k.cli_ok(&["repo", "create", "alice/gone"]);
        let gone = storage("alice/gone");
        let kept = k.root.join("kept.git");
        k.git_ok(&k.root, &["clone", "-q", "--bare", gone.to_str().expect("utf-8"), kept.to_str().expect("utf-8")]);
        k.cli_ok(&["repo", "delete", "alice/gone"]);
        std::fs::rename(&kept, &gone).expect("put the folder back");
        // refs whose objects are gone, and a repository without a folder
        let app = storage("alice/app");
        std::fs::remove_dir_all(app.join("objects")).expect("remove objects");
        std::fs::create_dir_all(app.join("objects/pack")).expect("mkdir");
        std::fs::remove_dir_all(storage("alice/empty")).expect("remove the folder");

        let out = k.cli(&["check"]).run().assert_err();
        assert_contains(&out.stdout, "problem: alice/app (id ", "the broken repository");
        assert_contains(&out.stdout, "refs/heads/main points at", "which ref");
        assert_contains(&out.stdout, "problem: alice/empty (id ", "the missing folder");
        assert_contains(&out.stdout, "no repository folder at", "what is missing");
        assert_contains(&out.stdout, &format!("not in the database: {}", gone.display()), "the leftover folder");
        assert_contains(&out.stderr, "2 problems, 1 folders not in the database", "the count");
    }
}
