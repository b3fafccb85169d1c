//! The push-trigger pages of a repository (`/NS/NAME/settings/triggers`) over raw HTTP: only its
//! admins see them (anonymous visitors are sent to sign in, non-readers get the missing
//! repository's 404, readers a 403), a webhook is added through the form (its secret never
//! shown again, refusals shown above the form with what was typed), deliveries are listed with
//! their attempts, redelivered and the trigger removed through the forms, each form only with
//! the session's CSRF token.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);
const PAGE: &str = "/alice/site/settings/triggers";

/// The heading and message of an error page.
fn error_text(html: &str) -> String {
    let at = html
        .find("<section class=\"error\">")
        .unwrap_or_else(|| panic!("not an error page:\n{html}"));
    let rest = &html[at..];
    rest[..rest.find("</p>").expect("a message")].to_string()
}

fn location(r: &Resp) -> String {
    r.header("location")
        .unwrap_or_else(|| panic!("no Location: {}", r.describe()))
        .to_string()
}

fn header<'a>(rec: &'a Value, name: &str) -> &'a str {
    rec["headers"][name].as_str().unwrap_or("")
}

/// The `<tr>` of delivery `id` on the triggers page (empty when it is not listed).
fn delivery_row(html: &str, id: &str) -> String {
    let marker = format!("<tr data-delivery-id=\"{id}\"");
    match html.find(&marker) {
        Some(at) => {
            let rest = &html[at..];
            rest[..rest.find("</tr>").unwrap_or(rest.len())].to_string()
        }
        None => String::new(),
    }
}

/// Posts a form given as owned pairs.
fn send(br: &mut Browser<'_>, path: &str, form: &[(String, String)]) -> Resp {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    br.post(path, &pairs)
}

both! {
    fn admins_manage_webhook_triggers_in_the_browser(b: Backend) {
        let secret = "page-hook-secret-5c1e9a";
        // The receiver checks the HMAC with the secret typed into the form.
        let rx = Receiver::start(Some(secret));
        let k = Kura::builder(b)
            .env("KURA_TRIGGER_ALLOWED_TARGETS", "127.0.0.1")
            .env("KURA_TRIGGER_RETRY_MAX", "1s")
            .env("KURA_MIRROR_POLL", "1s")
            .start();
        // alice owns alice/site; carol may read it; bob has no role.
        k.add_user("alice", "alice-pass-123");
        k.add_user("bob", "bob-pass-1234");
        k.add_user("carol", "carol-pass-123");
        let tok = k.token("alice", "write");
        k.cli_ok(&["repo", "create", "alice/site"]);
        k.cli_ok(&["grant", "alice/site", "carol", "--role", "read"]);
        let dir = k.init_repo("w", &k.url_auth("alice", &tok, "alice/site.git"));
        k.commit(&dir, "README.md", "# Site\n", "first");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);

        // Anonymous: sent to sign in (for any repository alike), and a POST changes nothing.
        let mut anon = Browser::new(&k);
        for path in [PAGE, "/alice/nothing/settings/triggers"] {
            let r = anon.get(path);
            assert_eq!(r.status, 303, "anonymous {path}: {}", r.describe());
            let to = location(&r);
            assert!(to.starts_with("/login?next=") && to.contains("settings"), "{to}");
            assert!(!r.text().contains("new-trigger"), "anonymous sees the form");
        }
        let r = anon.post(PAGE, &[("url", &rx.url("/anon"))]);
        assert_eq!(r.status, 303, "anonymous POST: {}", r.describe());

        // bob may not read it: the very page of a missing repository, no form.
        let mut bob = Browser::new(&k);
        assert_eq!(bob.sign_in("bob", "bob-pass-1234").status, 303, "bob signs in");
        let r = bob.get(PAGE);
        assert_eq!(r.status, 404, "{}", r.describe());
        assert!(!r.text().contains("new-trigger"), "bob sees the form");
        let missing = bob.get("/alice/nothing/settings/triggers");
        assert_eq!(missing.status, 404, "{}", missing.describe());
        assert_eq!(error_text(&r.text()), error_text(&missing.text()), "hidden and missing differ");

        // carol reads it: a 403 saying what is needed, no form, no Settings tab; her own form
        // token does not let her add one either.
        let mut carol = Browser::new(&k);
        assert_eq!(carol.sign_in("carol", "carol-pass-123").status, 303, "carol signs in");
        let r = carol.get(PAGE);
        assert_eq!(r.status, 403, "{}", r.describe());
        let html = r.text();
        assert_contains(&html, "You need admin access to alice/site to manage its triggers", "reader refusal");
        assert!(!html.contains("new-trigger"), "carol sees the form:\n{html}");
        let summary = carol.get("/alice/site").text();
        assert!(!summary.contains("tab-settings"), "carol gets the Settings tab");
        let carol_csrf = input_value(&carol.get("/settings").text(), "csrf");
        let r = carol.post(PAGE, &[("csrf", &carol_csrf), ("url", &rx.url("/carol"))]);
        assert_eq!(r.status, 403, "{}", r.describe());
        assert_eq!(k.cli_ok(&["trigger", "list", "alice/site"]).trim(), "no triggers");

        // alice: the Settings tab, the page (never cached by shared caches), the form.
        let mut alice = Browser::new(&k);
        assert_eq!(alice.sign_in("alice", "alice-pass-123").status, 303, "alice signs in");
        assert_contains(&alice.get("/alice/site").text(), &format!("id=\"tab-settings\" href=\"{PAGE}\""), "admin's Settings tab");
        let r = alice.get(PAGE);
        assert_eq!(r.status, 200, "{}", r.describe());
        let cc = r.header("cache-control").unwrap_or("").to_string();
        assert!(cc.contains("private") && cc.contains("no-cache"), "{cc}");
        let html = r.text();
        assert_contains(&html, "This repository has no triggers", "empty list");
        assert_contains(&html, "id=\"new-trigger\"", "the form");
        assert_contains(&html, "kura trigger add", "the note on other kinds");
        let csrf = input_value(&html, "csrf");
        let hook = rx.url("/hook?token=query-token-77");
        let form = |csrf: &str, url: &str, paths: &str| -> Vec<(String, String)> {
            [("csrf", csrf), ("url", url), ("format", "json"), ("secret", secret), ("paths", paths), ("branches", ""), ("tags", ""), ("exclude_paths", "")]
                .iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };

        // Without the form token, or with another, nothing is added.
        let no_token: Vec<(String, String)> = form("", &hook, "docs/**").into_iter().filter(|(n, _)| n != "csrf").collect();
        for f in [no_token, form("forged-token", &hook, "docs/**")] {
            let r = send(&mut alice, PAGE, &f);
            assert_eq!(r.status, 403, "{}", r.describe());
            assert_contains(&r.text(), "Form expired", "CSRF refusal");
        }
        assert_eq!(k.cli_ok(&["trigger", "list", "alice/site"]).trim(), "no triggers");

        // A target outside the allow list: the refusal above the form, what was typed kept
        // (but the secret).
        let r = send(&mut alice, PAGE, &form(&csrf, "http://10.1.2.3/x", "docs/**"));
        assert_eq!(r.status, 400, "{}", r.describe());
        let html = norm(&r.text());
        assert_contains(&html, "id=\"trigger-error\"", "the error message");
        assert_contains(&html, "10.1.2.3 is not in trigger_allowed_targets", "allow-list refusal");
        assert!(html.find("id=\"trigger-error\"") < html.find("id=\"new-trigger\""), "the message is above the form");
        assert_contains(&html, "name=\"url\" type=\"url\" value=\"http://10.1.2.3/x\"", "the URL typed is kept");
        assert_contains(&html, "name=\"paths\" value=\"docs/**\"", "the paths typed are kept");
        assert!(!html.contains(secret), "the secret is shown again:\n{html}");
        // A glob that cannot parse.
        let r = send(&mut alice, PAGE, &form(&csrf, &hook, "docs/[oops"));
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_contains(&norm(&r.text()), "is not a path glob", "bad glob");
        assert_eq!(k.cli_ok(&["trigger", "list", "alice/site"]).trim(), "no triggers");

        // Added: back to the page with a flash; listed without its secret or URL query.
        let r = send(&mut alice, PAGE, &form(&csrf, &hook, "docs/**"));
        assert_eq!(r.status, 303, "{}", r.describe());
        let to = location(&r);
        let id = to.strip_prefix(&format!("{PAGE}?added=")).unwrap_or_else(|| panic!("redirect to {to}")).to_string();
        let html = norm(&alice.get(&to).text());
        assert_contains(&html, &format!("Trigger {id} added."), "flash");
        let row = {
            let at = html.find(&format!("<tr data-trigger-id=\"{id}\"")).unwrap_or_else(|| panic!("trigger {id} not listed:\n{html}"));
            html[at..at + html[at..].find("</tr>").expect("row end")].to_string()
        };
        assert_contains(&row, "webhook", "kind");
        assert_contains(&row, &format!("127.0.0.1:{}/hook/…", rx.port()), "target without its query");
        assert_contains(&row, "<td>json</td>", "format");
        assert_contains(&row, "paths docs/**", "filters");
        assert_contains(&row, "<td>yes</td>", "signed");
        assert!(!html.contains(secret) && !html.contains("query-token-77"), "the secret or the URL's token is shown:\n{html}");
        let listed = k.cli_ok(&["trigger", "list", "alice/site"]);
        assert_contains(&listed, "webhook", "kura trigger list");

        // A push that changes docs/: one delivery, signed with the secret from the form.
        k.commit(&dir, "docs/readme.md", "# Docs\n", "Docs");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let got = rx.wait_for(1, WAIT);
        assert_eq!(got[0]["status"], 200, "{}", got[0]);
        assert_eq!(got[0]["signature_ok"], true, "HMAC with the secret typed into the form: {}", got[0]);
        assert_eq!(got[0]["path"], "/hook?token=query-token-77");
        assert_eq!(got[0]["json"]["changed_paths"], serde_json::json!(["docs/readme.md"]));
        let first = header(&got[0], "x-kura-delivery").to_string();
        assert!(first.parse::<i64>().is_ok(), "{}", got[0]);
        wait_until(WAIT, "the page lists the delivery as delivered", || {
            delivery_row(&alice.get(PAGE).text(), &first).contains("data-status=\"delivered\"")
        });
        let html = norm(&alice.get(PAGE).text());
        let row = delivery_row(&html, &first);
        assert_contains(&row, "refs/heads/main", "ref");
        assert_contains(&row, "<td>200</td>", "last HTTP status");
        assert_contains(&row, &format!("<td>#{id}</td>"), "trigger");
        assert_contains(&row, "class=\"redeliver\"", "a Redeliver button");
        assert_contains(&row, &format!("href=\"{PAGE}/deliveries/{first}\""), "a link to the delivery");
        // Its page: the attempt with its status and the receiver's answer.
        let r = alice.get(&format!("{PAGE}/deliveries/{first}"));
        assert_eq!(r.status, 200, "{}", r.describe());
        let detail = norm(&r.text());
        assert_contains(&detail, "class=\"attempt\"", "the attempt");
        assert_contains(&detail, "<td>200</td>", "its status code");
        assert_contains(&detail, "<pre class=\"excerpt\">ok</pre>", "the answer");
        assert!(!detail.contains(secret), "the secret on the delivery page");
        // Others see no delivery of it.
        assert_eq!(carol.get(&format!("{PAGE}/deliveries/{first}")).status, 403);
        assert_eq!(bob.get(&format!("{PAGE}/deliveries/{first}")).status, 404);
        assert_eq!(alice.get(&format!("{PAGE}/deliveries/999999")).status, 404);

        // A push outside docs/: skipped, with the reason on the page; it cannot be redelivered.
        k.commit(&dir, "src/app.rs", "fn main() {}\n", "App");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        let mut skipped = String::new();
        wait_until(WAIT, "a skipped delivery is listed", || {
            let html = alice.get(PAGE).text();
            let at = html.find("data-status=\"skipped\"");
            if let Some(at) = at {
                let start = html[..at].rfind("data-delivery-id=\"").expect("row") + 18;
                skipped = html[start..start + html[start..].find('"').expect("quote")].to_string();
            }
            at.is_some()
        });
        let row = delivery_row(&norm(&alice.get(PAGE).text()), &skipped);
        assert_contains(&row, "matches the path filters", "why it was skipped");
        assert!(!row.contains("class=\"redeliver\""), "a skipped delivery offers Redeliver:\n{row}");
        let r = alice.post(&format!("{PAGE}/deliveries/{skipped}/redeliver"), &[("csrf", &csrf)]);
        assert_eq!(r.status, 409, "{}", r.describe());

        // Redeliver through the form: a new delivery (another id) reaches the receiver.
        let r = alice.post(&format!("{PAGE}/deliveries/{first}/redeliver"), &[("csrf", "forged")]);
        assert_eq!(r.status, 403, "{}", r.describe());
        let r = alice.post(&format!("{PAGE}/deliveries/{first}/redeliver"), &[("csrf", &csrf)]);
        assert_eq!(r.status, 303, "{}", r.describe());
        let to = location(&r);
        let again = to.strip_prefix(&format!("{PAGE}?redelivered={first}&as=")).unwrap_or_else(|| panic!("redirect to {to}")).to_string();
        let got = rx.wait_for(2, WAIT);
        assert_eq!(got.len(), 2, "one more delivery: {got:?}");
        let second = header(&got[1], "x-kura-delivery");
        assert_ne!(second, first, "the redelivery has its own id");
        assert_eq!(second, again, "the id the page named");
        assert_eq!(got[1]["signature_ok"], true, "{}", got[1]);
        assert_eq!(got[1]["body"], got[0]["body"], "the same event");
        assert_contains(&alice.get(&to).text(), &format!("Delivery {first} queued again as delivery {again}."), "flash");
        let r = alice.get(&format!("{PAGE}/deliveries/{again}"));
        assert_contains(&r.text(), &format!("href=\"{PAGE}/deliveries/{first}\">delivery {first}</a>"), "names what it sends again");

        // Remove: not without the token, not by a reader, then through the form.
        let remove = format!("{PAGE}/{id}/remove");
        assert_eq!(alice.post(&remove, &[]).status, 403);
        assert_eq!(carol.post(&remove, &[("csrf", &carol_csrf)]).status, 403);
        let bob_csrf = input_value(&bob.get("/settings").text(), "csrf");
        assert_eq!(bob.post(&remove, &[("csrf", &bob_csrf)]).status, 404);
        assert_contains(&k.cli_ok(&["trigger", "list", "alice/site"]), "webhook", "still there");
        let r = alice.post(&remove, &[("csrf", &csrf)]);
        assert_eq!(r.status, 303, "{}", r.describe());
        let to = location(&r);
        assert_eq!(to, format!("{PAGE}?removed={id}"));
        let html = alice.get(&to).text();
        assert_contains(&html, &format!("Trigger {id} removed."), "flash");
        assert_contains(&html, "This repository has no triggers", "the list is empty");
        assert_eq!(k.cli_ok(&["trigger", "list", "alice/site"]).trim(), "no triggers");
        assert_eq!(alice.post(&remove, &[("csrf", &csrf)]).status, 404, "removing twice");
    }
}
