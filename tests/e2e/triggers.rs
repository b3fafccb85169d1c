//! Push triggers: webhooks (JSON and Mattermost, HMAC-signed, HTTPS with a private CA,
//! retried, logged, redelivered), EventBridge and CodePipeline on moto, branch/tag/path filters
//! (a monorepo), the allow list (also for a name that resolves elsewhere later), server-wide
//! triggers, and a delivery that survives Kura being killed mid-send.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

/// A server whose webhooks may reach loopback, with short retries and lease.
fn kura_for_triggers(b: Backend) -> KuraBuilder {
    Kura::builder(b)
        .env("KURA_TRIGGER_ALLOWED_TARGETS", "127.0.0.1")
        .env("KURA_TRIGGER_RETRY_MAX", "1s")
        .env("KURA_MIRROR_POLL", "1s")
}

/// Runs the CLI, panics on failure, returns stdout and stderr (messages go to stderr).
fn said(k: &Kura, args: &[&str]) -> String {
    k.cli(args).run().assert_ok().all()
}

fn header<'a>(rec: &'a Value, name: &str) -> &'a str {
    rec["headers"][name].as_str().unwrap_or("")
}

/// The delivery log line of delivery `id` in `kura trigger deliveries`.
fn status_of(k: &Kura, repo: &str, id: &str) -> String {
    let out = k.cli_ok(&["trigger", "deliveries", repo, "--limit", "100"]);
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .unwrap_or_else(|| panic!("delivery {id} not listed:\n{out}"))
        .to_string()
}

fn trigger_id(added: &str) -> String {
    // "trigger N added: ..."
    added
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no trigger id in {added:?}"))
        .to_string()
}

both! {
    fn webhook_is_signed_retried_logged_and_redelivered(b: Backend) {
        let secret = "hook-secret-0123456789";
        let rx = Receiver::start(Some(secret));
        let k = kura_for_triggers(b).start();
        let (_, _, dir) = k.alice_app();
        let token = k.token("alice", "admin");
        // The URL (its token) and the secret both come from stdin, never argv.
        let added = k
            .cli(&["trigger", "add", "alice/app", "webhook", "-", "--secret-stdin"])
            .stdin(format!("{}\n{secret}", rx.url("/jenkins?token=query-secret-77")))
            .run()
            .assert_ok()
            .all();
        assert_contains(&added, "signed", "trigger add says the requests are signed");
        let id = trigger_id(&added);

        let c1 = k.commit(&dir, "src/lib.rs", "fn a() {}\n", "Add lib\n\nWith a body line.");
        let push = k.git(&dir, &["push", "origin", "main"]);
        assert!(push.status.success(), "{}", push.all());
        assert_contains(&push.stderr, "remote: queued 1 event for 1 trigger (webhook 127.0.0.1)", "the pusher is told");

        let got = rx.wait_for(1, WAIT);
        let r = &got[0];
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["signature_ok"], true, "HMAC over the body with the secret: {r}");
        assert_eq!(header(r, "x-kura-event"), "push");
        assert!(header(r, "x-kura-signature-256").starts_with("sha256="), "{r}");
        let delivery = header(r, "x-kura-delivery").to_string();
        assert!(delivery.parse::<i64>().is_ok(), "numeric delivery id: {r}");
        assert_eq!(r["path"], "/jenkins?token=query-secret-77");
        let j = &r["json"];
        assert_eq!(j["ref"], "refs/heads/main");
        assert_eq!(j["after"], c1.as_str());
        assert_eq!(j["before"], "0000000000000000000000000000000000000000");
        assert_eq!(j["created"], true);
        assert_eq!(j["deleted"], false);
        assert_eq!(j["ref_type"], "branch");
        assert_eq!(j["branch"], "main");
        assert_eq!(j["pusher"]["name"], "alice");
        assert_eq!(j["repository"]["full_name"], "alice/app");
        assert_eq!(j["total_commits_count"], 1);
        assert_eq!(j["commits"][0]["id"], c1.as_str());
        assert_eq!(j["commits"][0]["title"], "Add lib");
        assert_eq!(j["head_commit"]["id"], c1.as_str());
        assert_eq!(j["changed_paths"], serde_json::json!(["src/lib.rs"]));
        assert_eq!(j["changed_paths_truncated"], false);
        assert!(j["repository"]["clone_url"].as_str().is_some_and(|u| u.ends_with("/alice/app.git")), "{j}");

        // The receiver fails twice: the event is retried until it is accepted, each attempt logged.
        rx.fail_next(2, 503);
        let c2 = k.commit(&dir, "src/lib.rs", "fn a() {}\nfn b() {}\n", "Add b");
        let c3 = k.commit(&dir, "README.md", "hi\n", "Readme");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let got = rx.wait_for(4, WAIT);
        let statuses: Vec<i64> = got[1..4].iter().map(|r| r["status"].as_i64().unwrap_or(0)).collect();
        assert_eq!(statuses, [503, 503, 200], "two failures then success: {got:?}");
        let second = header(&got[3], "x-kura-delivery").to_string();
        assert!(got[1..4].iter().all(|r| header(r, "x-kura-delivery") == second), "retries keep the delivery id");
        assert!(got[1..4].iter().all(|r| r["body"] == got[3]["body"]), "retries send the same bytes");
        let j = &got[3]["json"];
        assert_eq!(j["before"], c1.as_str());
        assert_eq!(j["after"], c3.as_str());
        assert_eq!(j["created"], false);
        assert_eq!(j["forced"], false);
        assert_eq!(j["total_commits_count"], 2);
        assert_eq!(j["commits"][0]["id"], c3.as_str(), "newest first");
        assert_eq!(j["commits"][1]["id"], c2.as_str());
        assert_eq!(j["changed_paths"], serde_json::json!(["README.md", "src/lib.rs"]));

        wait_until(WAIT, "the second delivery is marked delivered", || {
            status_of(&k, "alice/app", &second).contains("delivered")
        });
        let log = k.cli_ok(&["trigger", "delivery", &second]);
        assert_eq!(log.matches("attempt ").count(), 3, "three attempts:\n{log}");
        assert_contains(&log, "HTTP 503", "the failures");
        assert_contains(&log, "failing on purpose", "the answer's excerpt");
        assert_contains(&log, "HTTP 200", "the success");
        let failed = k.cli_ok(&["trigger", "deliveries", "alice/app", "--failed"]);
        assert_contains(&failed, "no deliveries failed", "nothing still failing");

        // Redelivery: a new delivery id, the same event.
        let again = said(&k, &["trigger", "redeliver", &delivery]);
        assert_contains(&again, "queued again", "redeliver");
        let got = rx.wait_for(5, WAIT);
        assert_ne!(header(&got[4], "x-kura-delivery"), delivery, "a redelivery has its own id");
        assert_eq!(got[4]["json"]["after"], c1.as_str(), "the same event");
        assert_eq!(got[4]["signature_ok"], true);

        // Deletion and tags are events too, marked as such.
        k.git_ok(&dir, &["tag", "-a", "v1", "-m", "v1"]);
        k.git_ok(&dir, &["push", "-q", "origin", "v1"]);
        k.git_ok(&dir, &["push", "-q", "origin", "HEAD:refs/heads/topic"]);
        k.git_ok(&dir, &["push", "-q", "origin", ":refs/heads/topic"]);
        let got = rx.wait_for(8, WAIT);
        let tag = got.iter().find(|r| r["json"]["ref"] == "refs/tags/v1").expect("tag event");
        assert_eq!(tag["json"]["ref_type"], "tag");
        assert_eq!(tag["json"]["tag"], "v1");
        assert_eq!(tag["json"]["event_name"], "tag_push");
        assert_eq!(tag["json"]["head_commit"]["id"], c3.as_str(), "the tagged commit");
        let del = got.iter().find(|r| r["json"]["ref"] == "refs/heads/topic" && r["json"]["deleted"] == true).expect("deletion event");
        assert_eq!(del["json"]["after"], "0000000000000000000000000000000000000000");
        assert_eq!(del["json"]["commits"], serde_json::json!([]));

        // Secrets never show: not the signing secret, not the URL's query.
        let listed = k.cli_ok(&["trigger", "list", "alice/app"]) + &k.cli_ok(&["trigger", "show", &id]);
        assert!(!listed.contains(secret) && !listed.contains("query-secret-77"), "{listed}");
        assert_contains(&listed, "set (not shown)", "show says a secret is set");
        let api = k.req("GET", "/api/v1/repos/alice/app/triggers").bearer(&token).send();
        assert_eq!(api.status, 200, "{}", api.describe());
        assert!(!api.text().contains(secret) && !api.text().contains("query-secret-77"), "{}", api.text());
        let logs = k.logs();
        assert!(!logs.contains(secret) && !logs.contains("query-secret-77"), "secrets in the log");
        // A repository admin adds webhooks through the API, but not triggers that act with the
        // server's AWS identity.
        for kind in ["eventbridge", "codepipeline"] {
            let r = k.req("POST", "/api/v1/repos/alice/app/triggers").bearer(&token)
                .json(&serde_json::json!({"kind": kind, "pipeline": "p"})).send();
            assert_eq!(r.status, 403, "{kind}: {}", r.describe());
        }
        let r = k.req("POST", "/api/v1/repos/alice/app/triggers").bearer(&token)
            .json(&serde_json::json!({"kind": "webhook", "url": rx.url("/api"), "paths": ["docs/**"]})).send();
        assert_eq!(r.status, 201, "{}", r.describe());
        assert_eq!(r.json()["paths"], serde_json::json!(["docs/**"]));
        let api_trigger = r.json()["id"].as_i64().expect("id").to_string();
        k.cli_ok(&["trigger", "remove", &api_trigger]);

        // /metrics: per trigger, what was delivered and how many runs failed.
        let admin = k.token("admin", "read");
        let m = k.req("GET", "/metrics").bearer(&admin).send().text();
        let figure = |name: &str| -> i64 {
            let key = format!("{name}{{repo=\"alice/app\",trigger=\"{id}\",kind=\"webhook\"}} ");
            m.lines()
                .find_map(|l| l.strip_prefix(&key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{key} missing from /metrics:\n{m}"))
        };
        assert_eq!(figure("kura_trigger_delivered_events_total"), 6, "main twice, the redelivery, the tag, topic created and deleted");
        assert!(figure("kura_trigger_failed_attempts_total") >= 2, "the two 503s");
        assert_eq!(figure("kura_trigger_pending_events"), 0);

        // Removing the trigger stops the events.
        k.cli_ok(&["trigger", "remove", &id]);
        k.commit(&dir, "x.txt", "x\n", "after removal");
        let push = k.git(&dir, &["push", "origin", "main"]);
        assert!(!push.stderr.contains("queued"), "no trigger left: {}", push.stderr);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(rx.received().len(), 8, "nothing sent after removal");
    }

    fn filters_fire_only_the_triggers_whose_paths_changed(b: Backend) {
        let a = Receiver::start(None);
        let bb = Receiver::start(None);
        let docs = Receiver::start(None);
        let releases = Receiver::start(None);
        let k = kura_for_triggers(b).start();
        let (_, _, dir) = k.alice_app();
        let ta = trigger_id(&said(&k, &["trigger", "add", "alice/app", "webhook", &a.url("/a"), "--paths", "services/a/**"]));
        let tb = trigger_id(&said(&k, &["trigger", "add", "alice/app", "webhook", &bb.url("/b"), "--paths", "services/b/**", "--branches", "main"]));
        said(&k, &["trigger", "add", "alice/app", "webhook", &docs.url("/d"), "--exclude-paths", "docs/**", "--format", "mattermost"]);
        said(&k, &["trigger", "add", "alice/app", "webhook", &releases.url("/r"), "--tags", "v*"]);

        k.commit(&dir, "services/a/main.go", "package a\n", "Service a");
        let push = k.git(&dir, &["push", "origin", "main"]);
        assert_contains(&push.stderr, "queued 4 events for 4 triggers", "one line for all triggers");
        a.wait_for(1, WAIT);
        docs.wait_for(1, WAIT);
        // b: nothing of services/b changed; the log says why.
        wait_until(WAIT, "b's delivery skipped", || {
            k.cli_ok(&["trigger", "deliveries", "alice/app", "--trigger", &tb]).contains("skipped")
        });
        let log = k.cli_ok(&["trigger", "deliveries", "alice/app", "--trigger", &tb]);
        assert_contains(&log, "none of the 1 changed paths matches the path filters (paths services/b/**)", "why it was skipped");
        let log = k.cli_ok(&["trigger", "deliveries", "alice/app"]);
        assert_contains(&log, "a branch push; this trigger has tag filters only", "the tag trigger skips branches");

        // Only b's files: only b fires (and the docs trigger, which excludes docs/ only).
        k.commit(&dir, "services/b/main.go", "package b\n", "Service b");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        bb.wait_for(1, WAIT);
        docs.wait_for(2, WAIT);
        // Only docs: nobody but... nobody (a and b filter on paths, docs excludes them).
        k.commit(&dir, "docs/guide.md", "# Guide\n", "Docs only");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        wait_until(WAIT, "docs-only push handled by every trigger", || {
            let log = k.cli_ok(&["trigger", "deliveries", "alice/app", "--limit", "100"]);
            log.lines().filter(|l| l.contains("pending")).count() == 0
                && log.lines().filter(|l| l.contains("refs/heads/main")).count() == 12
        });
        // b's branch filter: a push to another branch touching b is skipped.
        k.git_ok(&dir, &["checkout", "-q", "-b", "feature"]);
        k.commit(&dir, "services/b/x.go", "package b\n", "b on a branch");
        k.git_ok(&dir, &["push", "-q", "origin", "feature"]);
        wait_until(WAIT, "feature push skipped by b", || {
            k.cli_ok(&["trigger", "deliveries", "alice/app", "--trigger", &tb]).contains("branch feature matches none of the branch filters (main)")
        });
        // A tag: only the tag trigger (and docs, which has no branch/tag filter).
        k.git_ok(&dir, &["tag", "v2.0"]);
        k.git_ok(&dir, &["push", "-q", "origin", "v2.0"]);
        let r = releases.wait_for(1, WAIT);
        assert_eq!(r[0]["json"]["tag"], "v2.0");
        docs.wait_for(4, WAIT);

        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(a.received().len(), 1, "a fired once: {:?}", a.received());
        assert_eq!(bb.received().len(), 1, "b fired once: {:?}", bb.received());
        assert_eq!(releases.received().len(), 1, "the tag trigger fired once");
        let d = docs.received();
        assert_eq!(d.len(), 4, "docs: a, b, feature, tag (not the docs-only push): {d:?}");
        let text = d[0]["json"]["text"].as_str().expect("mattermost text");
        assert!(text.contains("alice") && text.contains("alice/app") && text.contains("Service a"), "{text}");
        assert!(d.iter().all(|r| r["json"]["text"].as_str().is_some_and(|t| !t.contains("Docs only"))), "{d:?}");
        let _ = ta;
    }

    fn https_with_a_private_ca(b: Backend) {
        let ca = TestCa::new();
        let other = TestCa::new();
        let good = Receiver::start_tls(None, &ca);
        let bad = Receiver::start_tls(None, &other);
        let k = kura_for_triggers(b)
            .env("KURA_CA_BUNDLE", ca.ca_pem().to_str().expect("utf-8"))
            .start();
        let (_, _, dir) = k.alice_app();
        said(&k, &["trigger", "add", "alice/app", "webhook", &good.url("/ok")]);
        let tbad = trigger_id(&said(&k, &["trigger", "add", "alice/app", "webhook", &bad.url("/unknown-ca")]));
        k.commit(&dir, "a.txt", "a\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let got = good.wait_for(1, WAIT);
        assert_eq!(got[0]["status"], 200);
        wait_until(WAIT, "the unknown CA's delivery fails", || {
            k.cli_ok(&["trigger", "deliveries", "alice/app", "--failed", "--trigger", &tbad]).contains("last error")
        });
        let log = k.cli_ok(&["trigger", "deliveries", "alice/app", "--failed", "--trigger", &tbad]);
        assert!(log.to_lowercase().contains("certificate") || log.contains("UnknownIssuer"), "a certificate error: {log}");
        assert!(bad.received().is_empty(), "nothing was sent over an untrusted connection");
    }

    fn allow_list_refuses_targets_when_added_and_when_sent(b: Backend) {
        let rx = Receiver::start(None);
        let mut k = kura_for_triggers(b).start();
        k.cli_ok(&["repo", "create", "admin/app"]);
        let e = k.cli_err(&["trigger", "add", "admin/app", "webhook", "http://10.1.2.3/hook"]);
        assert_contains(&e, "10.1.2.3 is not in trigger_allowed_targets (KURA_TRIGGER_ALLOWED_TARGETS)", "address outside the list");
        let e = k.cli_err(&["trigger", "add", "admin/app", "webhook", "http://169.254.169.254/latest/meta-data/"]);
        assert_contains(&e, "metadata", "metadata address");
        let e = k.cli_err(&["trigger", "add", "admin/app", "webhook", "ftp://127.0.0.1/x"]);
        assert_contains(&e, "not ftp://", "scheme");
        let e = k.cli_err(&["trigger", "add", "admin/app", "webhook", "http://u:p@127.0.0.1/x"]);
        assert_contains(&e, "no user name or password", "credentials in the URL");
        let e = k.cli_err(&["trigger", "add", "admin/app", "webhook", &rx.url("/x"), "--paths", "[oops"]);
        assert_contains(&e, "is not a path glob", "bad glob");
        let e = k.cli_err(&["trigger", "add", "admin/app", "slack", &rx.url("/x")]);
        assert_contains(&e, "use webhook, eventbridge or codepipeline", "unknown kind");
        assert_contains(&k.cli_ok(&["trigger", "list", "admin/app"]), "no triggers", "nothing was added");

        // A name is checked by the addresses it resolves to.
        k.stop_sigterm();
        k.set_env("KURA_TRIGGER_ALLOWED_TARGETS", "10.0.0.0/8");
        let e = k.cli_err(&["trigger", "add", "admin/app", "webhook", &format!("http://localhost:{}/x", rx.port())]);
        assert_contains(&e, "localhost resolves to an address that trigger_allowed_targets", "a name that resolves outside the list");
        // Added while the name was allowed; the list changes; the next delivery is refused
        // at connect time (the address actually connected to is checked every time).
        k.set_env("KURA_TRIGGER_ALLOWED_TARGETS", "localhost");
        k.spawn();
        let url = format!("http://localhost:{}/named", rx.port());
        said(&k, &["trigger", "add", "admin/app", "webhook", &url]);
        let dir = k.init_repo("w", &k.url_auth("admin", ADMIN_PASSWORD, "admin/app.git"));
        k.commit(&dir, "a.txt", "a\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        rx.wait_for(1, WAIT);
        k.stop_sigterm();
        k.set_env("KURA_TRIGGER_ALLOWED_TARGETS", "10.0.0.0/8");
        k.spawn();
        // (a restarted server listens on a new port)
        k.git_ok(&dir, &["remote", "set-url", "origin", &k.url_auth("admin", ADMIN_PASSWORD, "admin/app.git")]);
        k.commit(&dir, "a.txt", "b\n", "two");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        wait_until(WAIT, "the delivery is refused", || {
            k.cli_ok(&["trigger", "deliveries", "admin/app", "--failed"]).contains("last error")
        });
        let log = k.cli_ok(&["trigger", "deliveries", "admin/app", "--failed"]);
        assert_contains(&log, "localhost resolves to an address that trigger_allowed_targets", "refused when sent");
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(rx.received().len(), 1, "nothing sent to the refused address");
        // A bad list is a configuration error at start.
        k.stop_sigterm();
        k.set_env("KURA_TRIGGER_ALLOWED_TARGETS", "http://jenkins");
        let out = k.cli(&["config"]).run();
        assert!(!out.status.success(), "kura config refuses a bad list");
        assert_contains(&out.stderr, "trigger_allowed_targets", "names the setting");
    }

    fn a_delivery_survives_kura_being_killed(b: Backend) {
        let rx = Receiver::start(None);
        let mut k = kura_for_triggers(b).env("KURA_MIRROR_LEASE", "5s").start();
        let (_, _, dir) = k.alice_app();
        said(&k, &["trigger", "add", "alice/app", "webhook", &rx.url("/slow")]);
        rx.hang_next(1, 30.0);
        k.commit(&dir, "a.txt", "a\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        // The request reached the receiver, which holds it: kill Kura mid-delivery.
        let first = rx.wait_for(1, WAIT);
        assert!(first[0]["status"].is_null(), "still being answered: {first:?}");
        let id = header(&first[0], "x-kura-delivery").to_string();
        k.kill9();
        k.spawn();
        // After the lease expires the new process sends it again: at least once, same id.
        let got = rx.wait_for(2, Duration::from_secs(60));
        assert_eq!(header(&got[1], "x-kura-delivery"), id, "the same delivery id lets a receiver drop duplicates");
        // (the same event; its links name the restarted server's new port)
        for key in ["ref", "before", "after", "changed_paths", "pushed_at"] {
            assert_eq!(got[1]["json"][key], got[0]["json"][key], "the same event: {key}");
        }
        wait_until(WAIT, "marked delivered", || status_of(&k, "alice/app", &id).contains("delivered"));
    }

    fn odd_pushes_never_hold_the_queue(b: Backend) {
        let rx = Receiver::start(None);
        let k = kura_for_triggers(b).start();
        let (_, _, dir) = k.alice_app();
        k.cli(&["trigger", "add", "alice/app", "webhook", &rx.url("/q")]).run().assert_ok();
        // A commit message holding git log's separators forges no commit.
        let c1 = k.commit(&dir, "a.txt", "a\n", &format!("real\u{1e}{}\u{1f}Mallory\u{1f}m@x\u{1f}T\u{1f}fake", "f".repeat(40)));
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let got = rx.wait_for(1, WAIT);
        let commits = got[0]["json"]["commits"].as_array().expect("commits").clone();
        assert_eq!(commits.len(), 1, "{commits:?}");
        assert_eq!(commits[0]["id"], c1.as_str());
        // A tag naming a tree (no commit to list) is an event like any other and holds nothing up.
        let tree = k.rev(&dir, "HEAD^{tree}");
        k.git_ok(&dir, &["tag", "tree-tag", &tree]);
        k.git_ok(&dir, &["push", "-q", "origin", "tree-tag"]);
        k.commit(&dir, "b.txt", "b\n", "after the odd tag");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let got = rx.wait_for(3, WAIT);
        let odd = got.iter().find(|r| r["json"]["ref"] == "refs/tags/tree-tag").expect("the tree tag's event");
        assert_eq!(odd["json"]["commits"], serde_json::json!([]));
        assert_eq!(got[2]["json"]["commits"][0]["title"], "after the odd tag", "the queue went on");
        // 105 tags in one push: 100 events, and one line in the log for the rest.
        for i in 0..105 {
            k.git_ok(&dir, &["tag", &format!("many-{i:03}")]);
        }
        let push = k.git(&dir, &["push", "origin", "--tags"]);
        assert_contains(&push.stderr, "queued 100 events for 1 trigger", "capped");
        rx.wait_for(103, Duration::from_secs(60));
        let log = k.cli_ok(&["trigger", "deliveries", "alice/app", "--limit", "200"]);
        assert_contains(&log, "this push updated 105 refs: events were sent for the first 100, not for this and the 4 after it", "the cap is logged");
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(rx.received().len(), 103, "no event beyond the cap");
    }

    /// A process killed after receive-pack updated a ref but before the push was recorded
    /// leaves pre-receive's note; a later sweep records it (the refs confirm the update), so
    /// the push log has it and the triggers get its event.
    fn a_push_its_process_never_recorded_is_recovered(b: Backend) {
        let rx = Receiver::start(None);
        let k = kura_for_triggers(b).env("KURA_GIT_MAX_DURATION", "2s").start();
        let (_, _, dir) = k.alice_app();
        k.cli(&["trigger", "add", "alice/app", "webhook", &rx.url("/r")]).run().assert_ok();
        let c1 = k.commit(&dir, "a.txt", "1\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        // c2's objects reach the server through another branch; then main moves to it as if
        // a push's receive-pack had updated it and its process had died before recording.
        let c2 = k.commit(&dir, "a.txt", "2\n", "two");
        k.git_ok(&dir, &["push", "-q", "origin", "HEAD:refs/heads/side"]);
        rx.wait_for(2, WAIT);
        let show = k.cli_ok(&["repo", "show", "alice/app"]);
        let storage = show
            .lines()
            .find_map(|l| l.strip_prefix("storage:"))
            .map(|p| std::path::PathBuf::from(p.trim()))
            .unwrap_or_else(|| panic!("no storage line:\n{show}"));
        let id: i64 = storage
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".git"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no repository id in {}", storage.display()));
        cmd("git", &["--git-dir", storage.to_str().expect("utf-8"), "update-ref", "refs/heads/main", &c2, &c1]).run().assert_ok();
        let note = k.data_dir.join("repositories/tmp").join(format!("push-{id}-crashedpush.log"));
        std::fs::write(&note, format!("{c1} {c2} refs/heads/main\n")).expect("write the note");
        cmd("touch", &["-d", "10 minutes ago", note.to_str().expect("utf-8")]).run().assert_ok();
        let got = rx.wait_for(3, Duration::from_secs(90));
        let ev = &got[2]["json"];
        assert_eq!(ev["ref"], "refs/heads/main");
        assert_eq!(ev["before"], c1.as_str());
        assert_eq!(ev["after"], c2.as_str());
        assert_eq!(ev["pusher"]["name"], "(recovered after a restart)");
        assert!(!note.exists(), "the note is gone once recorded");
        let log = k.cli_ok(&["repo", "pushes", "alice/app"]);
        assert_contains(&log, "(recovered after a restart)", "the push log has it");
    }

    fn server_wide_triggers_fire_for_every_repository(b: Backend) {
        let rx = Receiver::start(None);
        let k = kura_for_triggers(b).start();
        let (token, _, dir) = k.alice_app();
        let e = k.cli_err(&["trigger", "add", "alice/app", "--server", "webhook", &rx.url("/all")]);
        assert_contains(&e, "too many arguments", "--server takes no repository");
        let added = said(&k, &["trigger", "add", "--server", "webhook", &rx.url("/all")]);
        assert_contains(&added, "every repository", "server-wide");
        k.cli_ok(&["repo", "create", "alice/other"]);
        k.commit(&dir, "a.txt", "a\n", "one");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let other = k.init_repo("o", &k.url_auth("alice", &token, "alice/other.git"));
        k.commit(&other, "b.txt", "b\n", "two");
        k.git_ok(&other, &["push", "-q", "origin", "main"]);
        let got = rx.wait_for(2, WAIT);
        let repos: std::collections::BTreeSet<&str> = got.iter().map(|r| r["json"]["repository"]["full_name"].as_str().unwrap_or("")).collect();
        assert_eq!(repos.into_iter().collect::<Vec<_>>(), ["alice/app", "alice/other"]);
        assert_contains(&k.cli_ok(&["trigger", "list", "--server"]), "*", "listed as server-wide");
        let log = k.cli_ok(&["trigger", "deliveries", "--server"]);
        assert_eq!(log.matches("delivered").count(), 2, "{log}");
        // A repository admin cannot see or add server-wide triggers through the API.
        let r = k.req("GET", "/api/v1/triggers").bearer(&token).send();
        assert_eq!(r.status, 403, "{}", r.describe());
    }
}

// EventBridge (a rule with an SQS target on moto receives exactly the matching events) and
// CodePipeline (executions with the push's variables).
both! {
    fn eventbridge_and_codepipeline_on_moto(b: Backend) {
        let moto = Moto::start();
        let pattern = serde_json::json!({
            "source": ["kura"],
            "detail-type": ["Kura Push"],
            "detail": {"repository": [{"prefix": "alice/"}], "changed_paths": [{"prefix": "services/a/"}]}
        });
        let queue = events_to_queue(&moto, "default", &pattern);
        let all = events_to_queue(&moto, "default", &serde_json::json!({"source": ["kura"]}));
        create_pipeline(&moto, "app-a");
        let k = kura_for_triggers(b)
            .codecommit("http://127.0.0.1:9", Some(&moto.endpoint()))
            .start();
        let (_, _, dir) = k.alice_app();
        said(&k, &["trigger", "add", "alice/app", "eventbridge"]);
        let filtered = trigger_id(&said(&k, &["trigger", "add", "alice/app", "eventbridge", "--detail-type", "Kura Docs", "--paths", "docs/**"]));
        said(&k, &[
            "trigger", "add", "alice/app", "codepipeline", "app-a", "--paths", "services/a/**",
            "--variable", "COMMIT={commit}", "--variable", "BRANCH={branch}", "--variable", "PUSHER={pusher}",
        ]);
        let e = k.cli_err(&["trigger", "add", "alice/app", "codepipeline", "app-a", "--variable", "X={nope}"]);
        assert_contains(&e, "unknown placeholder {nope}", "placeholders checked");

        let cb = k.commit(&dir, "services/b/x.txt", "b\n", "b only");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let ev = wait_queue(&moto, &all, 1, WAIT);
        assert_eq!(ev[0]["detail"]["after"], cb.as_str(), "every event reaches the bus");
        let ca = k.commit(&dir, "services/a/y.txt", "a\n", "a change");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let matched = wait_queue(&moto, &queue, 1, WAIT);
        let e = &matched[0];
        assert_eq!(e["source"], "kura");
        assert_eq!(e["detail-type"], "Kura Push");
        let d = &e["detail"];
        assert_eq!(d["repository"], "alice/app");
        assert_eq!(d["ref"], "refs/heads/main");
        assert_eq!(d["after"], ca.as_str());
        assert_eq!(d["before"], cb.as_str());
        assert_eq!(d["pusher"], "alice");
        assert_eq!(d["changed_paths"], serde_json::json!(["services/a/y.txt"]));
        assert_eq!(d["commits"][0]["title"], "a change");
        wait_queue(&moto, &all, 1, WAIT);
        std::thread::sleep(Duration::from_secs(2));
        assert!(queue_messages(&moto, &queue).is_empty(), "exactly the matching event: the b-only push was not routed");
        // The docs trigger sent nothing: both pushes are skipped in its log.
        let log = k.cli_ok(&["trigger", "deliveries", "alice/app", "--trigger", &filtered]);
        assert_eq!(log.matches("skipped").count(), 2, "{log}");

        // The pipeline started once (only the services/a push), with the push's variables.
        let runs = wait_pipeline_executions(&moto, "app-a", 1, WAIT);
        assert_eq!(runs.len(), 1, "{runs:?}");
        let vars = execution_variables(&runs[0]);
        assert!(vars.contains(&("COMMIT".into(), ca.clone())), "{vars:?}");
        assert!(vars.contains(&("BRANCH".into(), "main".into())), "{vars:?}");
        assert!(vars.contains(&("PUSHER".into(), "alice".into())), "{vars:?}");

        // A pipeline that does not exist: the delivery fails with AWS's words and is retried.
        said(&k, &["trigger", "add", "alice/app", "codepipeline", "missing-pipeline"]);
        k.commit(&dir, "c.txt", "c\n", "c");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        wait_until(WAIT, "the missing pipeline's delivery fails", || {
            k.cli_ok(&["trigger", "deliveries", "alice/app", "--failed"]).contains("PipelineNotFound")
        });
    }
}
