//! Small leaks and sharp edges: forged request ids, file permissions of the data folder,
//! `.GIT` URLs, what a disabled account or someone else's token id reveals, absurd token
//! lifetimes.

use std::os::unix::fs::PermissionsExt;

use crate::harness::*;

both! {
    fn request_ids_cannot_forge_log_lines(b: Backend) {
        let k = Kura::start(b);
        let r = k.req("GET", "/healthz").header("x-request-id", "abc-123_4.5:6").send();
        assert_eq!(r.header("x-request-id"), Some("abc-123_4.5:6"), "a plain id is kept");
        let forged = "x\" level=ERROR msg=\"forged";
        let r = k.req("GET", "/healthz").header("x-request-id", forged).send();
        let id = r.header("x-request-id").unwrap_or_default().to_string();
        assert!(!id.is_empty() && id != forged, "a forged id is replaced: {id:?}");
        let long = "a".repeat(65);
        let r = k.req("GET", "/healthz").header("x-request-id", &long).send();
        assert_ne!(r.header("x-request-id"), Some(long.as_str()), "an overlong id is replaced");
        assert!(!k.logs().contains("forged"), "the forged id reached the log");
    }

    fn names_are_case_insensitive_to_the_git_suffix(b: Backend) {
        let k = Kura::start(b);
        let tok = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);
        for suffix in [".git", ".GIT", ".Git", ""] {
            let url = k.url_auth("alice", &tok, &format!("Alice/App{suffix}"));
            k.git(&k.work, &["ls-remote", &url]).assert_ok();
        }
    }

    fn refusals_reveal_nothing(b: Backend) {
        let k = Kura::start(b);
        let alice = k.user_with_token("alice");
        k.add_user("bob", "bob-pw-12345");
        k.cli_ok(&["repo", "create", "bob/app"]);
        k.cli_ok(&["user", "disable", "bob"]);
        // a wrong password for a disabled account is just a wrong password
        let r = k.req("GET", "/bob/app.git/info/refs?service=git-upload-pack").basic("bob", "not-his-password").send();
        assert_eq!(r.status, 401, "{}", r.describe());
        assert!(!r.text().contains("disabled"), "a wrong password revealed the disabled account: {}", r.describe());
        // someone else's token id looks exactly like a missing one
        let bob_tok_id = {
            k.cli_ok(&["user", "enable", "bob"]);
            k.token("bob", "read");
            let list = k.cli_ok(&["token", "list", "bob"]);
            list.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("bob's token id").to_string()
        };
        let theirs = k.req("DELETE", &format!("/api/v1/tokens/{bob_tok_id}")).bearer(&alice).send();
        let missing = k.req("DELETE", "/api/v1/tokens/987654").bearer(&alice).send();
        assert_eq!((theirs.status, missing.status), (404, 404), "{} / {}", theirs.describe(), missing.describe());
        assert_eq!(
            theirs.text().replace(&bob_tok_id, "N"),
            missing.text().replace("987654", "N"),
            "the same answer"
        );
        // absurd lifetimes are refused, never wrapped into the past
        let err = k.cli_err(&["token", "create", "alice", "--scope", "read", "--expires-in", "500000years"]);
        assert!(err.contains("lifetime") || err.contains("invalid") || err.contains("too large"), "{err}");
    }
}

#[test]
fn the_data_folder_is_private() {
    let k = Kura::start(Backend::Sqlite);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&k.data_dir), 0o700, "data folder");
    assert_eq!(mode(&k.data_dir.join("kura.db")), 0o600, "database file");
}

both! {
    /// The CLI prints clone URLs with the address the server really listens on, even when it
    /// runs without the server's `--listen` (here: the server was given port 0).
    fn printed_clone_urls_reach_the_server(b: Backend) {
        let k = Kura::start(b);
        k.add_user("alice", "alice-pw-123");
        let out = k.cli_ok(&["repo", "create", "alice/app"]);
        let printed = out.lines().find(|l| l.starts_with("http")).expect("a clone URL").trim().to_string();
        assert_eq!(printed, k.url("alice/app.git"), "{out}");
        k.git(&k.work, &["ls-remote", &printed.replace("http://", "http://alice:alice-pw-123@")]).assert_ok();
    }
}
