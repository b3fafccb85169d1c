//! The push log: every accepted push is recorded (with or without mirrors), readable with
//! `kura repo pushes` and `GET /api/v1/repos/{ns}/{name}/pushes` by readers only, paged newest
//! first, and pruned after `push_log_retention`.

use crate::harness::*;

both! {
    fn every_push_is_logged(b: Backend) {
        let k = Kura::start(b);
        // alice owns the repository; an admin-scope token lets her push to the protected main
        k.add_user("alice", "alice-pw-123");
        let alice = k.token("alice", "admin");
        let bob = k.user_with_token("bob");
        let carol = k.user_with_token("carol");
        k.cli_ok(&["repo", "create", "alice/app"]);
        k.cli_ok(&["grant", "alice/app", "bob", "--role", "read"]);
        k.cli_ok(&["protect", "alice/app", "main"]);
        let empty = k.cli(&["repo", "pushes", "alice/app"]).run().assert_ok();
        assert_contains(&empty.all(), "no pushes", "empty log");

        let dir = k.init_repo("w", &k.url_auth("alice", &alice, "alice/app.git"));
        let c1 = k.commit(&dir, "a.txt", "1\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let c2 = k.commit(&dir, "a.txt", "2\n", "two");
        k.git_ok(&dir, &["tag", "v1"]);
        k.git_ok(&dir, &["push", "-q", "origin", "main", "v1"]);
        // a refused push (force-push to a protected branch) is not logged
        k.git_ok(&dir, &["reset", "-q", "--hard", &c1]);
        k.commit(&dir, "b.txt", "x\n", "diverged");
        k.git(&dir, &["push", "-q", "--force", "origin", "main"]).assert_err();

        wait_until(std::time::Duration::from_secs(10), "two pushes in the log", || {
            k.cli_ok(&["repo", "pushes", "alice/app"]).matches("push ").count() == 2
        });
        let out = k.cli_ok(&["repo", "pushes", "alice/app"]);
        assert_eq!(out.matches("push ").count(), 2, "two pushes logged:\n{out}");
        assert_contains(&out, "by alice", "pusher");
        assert_contains(&out, &format!("refs/heads/main {} -> {}", &c1[..12], &c2[..12]), "update of main");
        assert_contains(&out, &format!("refs/heads/main (none) -> {}", &c1[..12]), "creation of main");
        assert_contains(&out, "refs/tags/v1 (none)", "the tag");
        let newest_first = out.find(&c2[..12]).expect("c2 listed") < out.find("(none) -> ").expect("creation listed");
        assert!(newest_first, "newest first:\n{out}");

        // the API: readers only, newest first, paged
        let r = k.req("GET", "/api/v1/repos/alice/app/pushes?limit=1").bearer(&bob).send();
        assert_eq!(r.status, 200, "{}", r.describe());
        let page = r.json();
        let page = page.as_array().expect("an array");
        assert_eq!(page.len(), 1, "limit=1: {page:?}");
        assert_eq!(page[0]["pusher"], "alice");
        let refs = page[0]["refs"].as_array().expect("refs");
        assert_eq!(refs.len(), 2, "main and v1 in the second push: {refs:?}");
        assert!(refs.iter().any(|r| r["ref"] == "refs/heads/main" && r["old"] == c1.as_str() && r["new"] == c2.as_str()), "{refs:?}");
        assert!(page[0]["protocol"].as_str().is_some_and(|p| p.starts_with("http")), "{page:?}");
        let id = page[0]["id"].as_i64().expect("id");
        let r = k.req("GET", &format!("/api/v1/repos/alice/app/pushes?limit=5&before={id}")).bearer(&bob).send();
        let older = r.json();
        let older = older.as_array().expect("an array");
        assert_eq!(older.len(), 1, "the page before: {older:?}");
        assert_eq!(older[0]["refs"][0]["new"], c1.as_str());
        let r = k.req("GET", "/api/v1/repos/alice/app/pushes").bearer(&carol).send();
        assert_eq!(r.status, 404, "a stranger sees no log: {}", r.describe());
    }

    fn the_log_is_pruned_after_its_retention(b: Backend) {
        let mut k = Kura::start(b);
        let alice = k.user_with_token("alice");
        k.cli_ok(&["repo", "create", "alice/app"]);
        let dir = k.init_repo("w", &k.url_auth("alice", &alice, "alice/app.git"));
        k.commit(&dir, "a.txt", "1\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        // the log is written as the push's response ends: give it a moment
        wait_until(std::time::Duration::from_secs(10), "the push in the log", || {
            k.cli_ok(&["repo", "pushes", "alice/app"]).contains("by alice")
        });
        k.stop_sigterm();
        std::thread::sleep(std::time::Duration::from_millis(2100));
        k.set_env("KURA_PUSH_LOG_RETENTION", "1s");
        k.spawn();
        wait_until(std::time::Duration::from_secs(30), "the push log pruned", || {
            k.cli(&["repo", "pushes", "alice/app"]).run().all().contains("no pushes")
        });
        assert_contains(&k.logs(), "pruned the push log", "the log says so");
    }
}
