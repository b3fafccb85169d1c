//! The authorisation matrix: every API route and the Git services, for every kind of caller
//! (anonymous, password on the API, no role, reader, writer, repository admin, site admin,
//! disabled user, expired token, revoked token, read-scope token, site admin with a read token).
//! Mutating routes get a body that fails validation after the access check, so an allowed
//! caller answers 400 and nothing changes.

use crate::harness::*;
use serde_json::json;

/// The callers, in the order of the expectation columns.
const CALLERS: [&str; 12] = [
    "anonymous",
    "password",
    "outsider",
    "reader",
    "writer",
    "repoadmin",
    "siteadmin",
    "disabled",
    "expired",
    "revoked",
    "readscope",
    "adminread",
];

struct Callers {
    /// `None`: no Authorization header; `Some((user, secret, bearer))`.
    creds: Vec<Option<(String, String, bool)>>,
}

fn setup(k: &Kura) -> Callers {
    k.cli_ok(&["group", "add", "team"]);
    for u in ["outsider", "reader", "writer", "repoadmin", "disabled"] {
        k.add_user(u, &format!("{u}-pw-123"));
    }
    k.cli_ok(&["group", "member", "add", "team", "reader", "--role", "read"]);
    k.cli_ok(&[
        "group", "member", "add", "team", "writer", "--role", "write",
    ]);
    k.cli_ok(&[
        "group", "member", "add", "team", "disabled", "--role", "write",
    ]);
    k.cli_ok(&["repo", "create", "team/private"]);
    k.cli_ok(&["repo", "create", "team/public", "--public"]);
    k.cli_ok(&["repo", "create", "team/doomed"]);
    for r in ["team/private", "team/public", "team/doomed"] {
        k.cli_ok(&["grant", r, "repoadmin", "--role", "admin"]);
    }
    let tok = |u: &str, scope: &str| k.token(u, scope);
    let disabled = tok("disabled", "write");
    k.cli_ok(&["user", "disable", "disabled"]);
    let expired = parse_token(&k.cli_ok(&[
        "token",
        "create",
        "writer",
        "--scope",
        "write",
        "--expires-in",
        "1s",
    ]));
    let revoked_out = k.cli_ok(&["token", "create", "writer", "--scope", "write"]);
    let revoked = parse_token(&revoked_out);
    let revoked_id = k
        .cli_ok(&["token", "list", "writer"])
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .expect("token id");
    k.cli_ok(&["token", "revoke", &revoked_id]);
    let bearer = |u: &str, t: String| Some((u.to_string(), t, true));
    let creds = vec![
        None,
        Some(("writer".to_string(), "writer-pw-123".to_string(), false)),
        bearer("outsider", tok("outsider", "admin")),
        bearer("reader", tok("reader", "admin")),
        bearer("writer", tok("writer", "admin")),
        bearer("repoadmin", tok("repoadmin", "admin")),
        bearer("admin", tok("admin", "admin")),
        bearer("disabled", disabled),
        bearer("writer", expired),
        bearer("writer", revoked),
        bearer("writer", tok("writer", "read")),
        bearer("admin", tok("admin", "read")),
    ];
    // Let the one-second token expire.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    Callers { creds }
}

fn send(
    k: &Kura,
    c: &Option<(String, String, bool)>,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    basic_for_git: bool,
) -> Resp {
    let mut r = k.req(method, path);
    if let Some((user, secret, bearer)) = c {
        r = if *bearer && !basic_for_git {
            r.bearer(secret)
        } else {
            r.basic(user, secret)
        };
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send()
}

fn check(
    k: &Kura,
    callers: &Callers,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    want: [u16; 12],
    failures: &mut Vec<String>,
) {
    for (i, c) in callers.creds.iter().enumerate() {
        let r = send(k, c, method, path, body.as_ref(), false);
        if r.status != want[i] {
            failures.push(format!(
                "{method} {path} as {}: want {}, got {}",
                CALLERS[i],
                want[i],
                r.describe()
            ));
        } else if r.status >= 400 && path.starts_with("/api/") {
            let v = r.json();
            if v["error"].as_str().is_none_or(str::is_empty)
                || v["code"].as_str().is_none_or(str::is_empty)
            {
                failures.push(format!(
                    "{method} {path} as {}: error without error/code: {}",
                    CALLERS[i],
                    r.describe()
                ));
            }
        }
    }
}

both! {
    fn api_routes_by_caller(b: Backend) {
        // Expired and revoked tokens fail on every row: keep them from throttling the address.
        let k = Kura::builder(b).env("KURA_AUTH_MAX_FAILURES", "100000").start();
        let callers = setup(&k);
        let mut f = Vec::new();
        let bad_role = Some(json!({"role": "bogus"}));
        //                                   anon pw  out  rdr  wrt  radm sadm dis  exp  rev  rsc  ard
        check(&k, &callers, "GET", "/api/v1/user", None,
            [401, 401, 200, 200, 200, 200, 200, 403, 401, 401, 200, 200], &mut f);
        check(&k, &callers, "GET", "/api/v1/users", None,
            [401, 401, 403, 403, 403, 403, 200, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "POST", "/api/v1/users", Some(json!({"name": "bad name!"})),
            [401, 401, 403, 403, 403, 403, 400, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "POST", "/api/v1/users/nobody-here/disable", None,
            [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "POST", "/api/v1/users/nobody-here/enable", None,
            [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "PUT", "/api/v1/users/writer/password", Some(json!({"password": "short"})),
            [401, 401, 403, 403, 400, 403, 400, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "GET", "/api/v1/users/writer/tokens", None,
            [401, 401, 403, 403, 200, 403, 200, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "POST", "/api/v1/users/writer/tokens", Some(json!({"scope": "bogus"})),
            [401, 401, 403, 403, 400, 403, 400, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "DELETE", "/api/v1/tokens/999999", None,
            [401, 401, 404, 404, 404, 404, 404, 403, 401, 401, 404, 404], &mut f);
        check(&k, &callers, "POST", "/api/v1/groups", Some(json!({"name": "bad name!"})),
            [401, 401, 403, 403, 403, 403, 400, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "PUT", "/api/v1/groups/team/members/reader", bad_role.clone(),
            [401, 401, 403, 403, 403, 403, 400, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "DELETE", "/api/v1/groups/team/members/nobody-here", None,
            [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "GET", "/api/v1/repos", None,
            [401, 401, 200, 200, 200, 200, 200, 403, 401, 401, 200, 200], &mut f);
        check(&k, &callers, "POST", "/api/v1/repos", Some(json!({"namespace": "team", "name": "x", "default_branch": "bad..branch"})),
            [401, 401, 403, 403, 403, 403, 400, 403, 401, 401, 403, 403], &mut f);
        // A trigger of team/private and a server-wide one, to see that each scope keeps to its
        // own (EventBridge: adding it reaches nothing; no push is made, so nothing is sent).
        let add_trigger = |path: &str| {
            let r = send(&k, &callers.creds[6], "POST", path, Some(&json!({"kind": "eventbridge"})), false);
            assert_eq!(r.status, 201, "{}", r.describe());
            r.json()["id"].as_i64().expect("trigger id")
        };
        let repo_trigger = add_trigger("/api/v1/repos/team/private/triggers");
        let server_trigger = add_trigger("/api/v1/triggers");
        let bad_trigger = Some(json!({"kind": "nope"}));
        for repo in ["private", "public"] {
            let hidden = if repo == "private" { 404 } else { 200 };
            let hidden_adm = if repo == "private" { 404 } else { 403 };
            let base = format!("/api/v1/repos/team/{repo}");
            check(&k, &callers, "GET", &base, None,
                [401, 401, hidden, 200, 200, 200, 200, 403, 401, 401, 200, 200], &mut f);
            check(&k, &callers, "PATCH", &base, Some(json!({"default_branch": "bad..branch"})),
                [401, 401, hidden_adm, 403, 403, 400, 400, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "PUT", &format!("{base}/grants/reader"), bad_role.clone(),
                [401, 401, hidden_adm, 403, 403, 400, 400, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "DELETE", &format!("{base}/grants/nobody-here"), None,
                [401, 401, hidden_adm, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "GET", &format!("{base}/protections"), None,
                [401, 401, hidden, 200, 200, 200, 200, 403, 401, 401, 200, 200], &mut f);
            check(&k, &callers, "POST", &format!("{base}/protections"), Some(json!({"pattern": "refs/heads/x", "allow_push": []})),
                [401, 401, hidden_adm, 403, 403, 400, 400, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "DELETE", &format!("{base}/protections?pattern=nothing"), None,
                [401, 401, hidden_adm, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "GET", &format!("{base}/pushes"), None,
                [401, 401, hidden, 200, 200, 200, 200, 403, 401, 401, 200, 200], &mut f);
            // mirrors: site admins only (they push with the server's identity)
            check(&k, &callers, "GET", &format!("{base}/mirrors"), None,
                [401, 401, 403, 403, 403, 403, 200, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "POST", &format!("{base}/mirrors"), Some(json!({"url": "ftp://nowhere"})),
                [401, 401, 403, 403, 403, 403, 400, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "GET", &format!("{base}/mirrors/999999"), None,
                [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "DELETE", &format!("{base}/mirrors/999999"), None,
                [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "POST", &format!("{base}/mirrors/999999/sync"), None,
                [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
            // triggers: repository admins (and site admins)
            check(&k, &callers, "GET", &format!("{base}/triggers"), None,
                [401, 401, hidden_adm, 403, 403, 200, 200, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "POST", &format!("{base}/triggers"), bad_trigger.clone(),
                [401, 401, hidden_adm, 403, 403, 400, 400, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "POST", &format!("{base}/triggers"), Some(json!({"kind": "webhook", "url": "https://example.invalid/", "bus": "default"})),
                [401, 401, hidden_adm, 403, 403, 400, 400, 403, 401, 401, 403, 403], &mut f);
            // team/private's own trigger shows there only; the server-wide one in no repository
            let own = if repo == "private" { 200 } else { 404 };
            check(&k, &callers, "GET", &format!("{base}/triggers/{repo_trigger}"), None,
                [401, 401, hidden_adm, 403, 403, own, own, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "GET", &format!("{base}/triggers/{server_trigger}"), None,
                [401, 401, hidden_adm, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "DELETE", &format!("{base}/triggers/999999"), None,
                [401, 401, hidden_adm, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "DELETE", &format!("{base}/triggers/{server_trigger}"), None,
                [401, 401, hidden_adm, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
            if repo == "public" {
                check(&k, &callers, "DELETE", &format!("{base}/triggers/{repo_trigger}"), None,
                    [401, 401, 403, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
            }
            check(&k, &callers, "GET", &format!("{base}/deliveries"), None,
                [401, 401, hidden_adm, 403, 403, 200, 200, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "GET", &format!("{base}/deliveries?trigger={server_trigger}"), None,
                [401, 401, hidden_adm, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "GET", &format!("{base}/deliveries/999999"), None,
                [401, 401, hidden_adm, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
            check(&k, &callers, "POST", &format!("{base}/deliveries/999999/redeliver"), None,
                [401, 401, hidden_adm, 403, 403, 404, 404, 403, 401, 401, 403, 403], &mut f);
        }
        // server-wide triggers: site admins only
        check(&k, &callers, "GET", "/api/v1/triggers", None,
            [401, 401, 403, 403, 403, 403, 200, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "POST", "/api/v1/triggers", bad_trigger.clone(),
            [401, 401, 403, 403, 403, 403, 400, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "GET", &format!("/api/v1/triggers/{server_trigger}"), None,
            [401, 401, 403, 403, 403, 403, 200, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "GET", &format!("/api/v1/triggers/{repo_trigger}"), None,
            [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "DELETE", "/api/v1/triggers/999999", None,
            [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "DELETE", &format!("/api/v1/triggers/{repo_trigger}"), None,
            [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "GET", "/api/v1/deliveries", None,
            [401, 401, 403, 403, 403, 403, 200, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "GET", "/api/v1/deliveries/999999", None,
            [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
        check(&k, &callers, "POST", "/api/v1/deliveries/999999/redeliver", None,
            [401, 401, 403, 403, 403, 403, 404, 403, 401, 401, 403, 403], &mut f);
        // Nothing above removed either trigger.
        for path in [format!("/api/v1/repos/team/private/triggers/{repo_trigger}"), format!("/api/v1/triggers/{server_trigger}")] {
            let r = send(&k, &callers.creds[6], "GET", &path, None, false);
            assert_eq!(r.status, 200, "{path} still there: {}", r.describe());
        }
        // Deleting: everyone refused but the repository admin, who deletes it (last).
        check(&k, &callers, "DELETE", "/api/v1/repos/team/doomed", None,
            [401, 401, 404, 403, 403, 204, 404, 403, 401, 401, 404, 404], &mut f);
        check(&k, &callers, "GET", "/metrics", None,
            [401, 403, 403, 403, 403, 403, 200, 403, 401, 401, 403, 200], &mut f);
        assert!(f.is_empty(), "{} cells differ:\n{}", f.len(), f.join("\n"));
    }

    fn git_services_by_caller(b: Backend) {
        // Expired and revoked tokens fail on every row: keep them from throttling the address.
        let k = Kura::builder(b).env("KURA_AUTH_MAX_FAILURES", "100000").start();
        let callers = setup(&k);
        let mut f = Vec::new();
        for (repo, rows) in [
            //                    anon pw   out  rdr  wrt  radm sadm dis  exp  rev  rsc  ard
            ("private", [[401, 200, 404, 200, 200, 200, 200, 403, 401, 401, 200, 200],
                         [401, 200, 404, 403, 200, 200, 200, 403, 401, 401, 403, 403]]),
            ("public",  [[200, 200, 200, 200, 200, 200, 200, 403, 401, 401, 200, 200],
                         [401, 200, 403, 403, 200, 200, 200, 403, 401, 401, 403, 403]]),
        ] {
            for (service, want) in ["upload-pack", "receive-pack"].iter().zip(rows) {
                let path = format!("/team/{repo}.git/info/refs?service=git-{service}");
                for (i, c) in callers.creds.iter().enumerate() {
                    let r = send(&k, c, "GET", &path, None, true);
                    if r.status != want[i] {
                        f.push(format!("{path} as {}: want {}, got {}", CALLERS[i], want[i], r.describe()));
                    }
                    // the POST endpoints decide the same way (an empty request: a flush packet)
                    let mut req = k.req("POST", &format!("/team/{repo}.git/git-{service}"))
                        .header("Content-Type", &format!("application/x-git-{service}-request"))
                        .body("0000");
                    if let Some((user, secret, _)) = c {
                        req = req.basic(user, secret);
                    }
                    let r = req.send();
                    if r.status != want[i] {
                        f.push(format!("POST git-{service} {repo} as {}: want {}, got {}", CALLERS[i], want[i], r.describe()));
                    }
                }
            }
        }
        assert!(f.is_empty(), "{} cells differ:\n{}", f.len(), f.join("\n"));
    }
}
