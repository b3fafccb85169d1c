//! Health endpoints, the JSON API, request ids.

use crate::harness::*;
use serde_json::json;

#[track_caller]
fn assert_json_error(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.describe());
    let v = r.json();
    assert!(
        v.get("error")
            .and_then(|e| e.as_str())
            .is_some_and(|e| !e.is_empty()),
        "{what}: errors are JSON {{\"error\": \"...\"}}: {}",
        r.describe()
    );
}

both! {
    fn health_and_openapi(b: Backend) {
        let k = Kura::start(b);
        let r = k.get("/healthz");
        assert_eq!(r.status, 200, "{}", r.describe());
        let r = k.get("/readyz");
        assert_eq!(r.status, 200, "{}", r.describe());
        let r = k.get("/api/v1/openapi.json");
        assert_eq!(r.status, 200, "{}", r.describe());
        let doc = r.json();
        assert!(doc.get("openapi").is_some(), "openapi.json has an `openapi` key");
        assert!(doc["paths"].get("/api/v1/repos").is_some() || doc["paths"].get("/repos").is_some(),
            "openapi.json documents the repos endpoint: {}", doc["paths"]);
        let r = k.get("/no/such/thing/at/all");
        assert_eq!(r.status, 404, "{}", r.describe());

        // readiness follows the repository folder: a file in its place is not writable storage
        let repos = k.data_dir.join("repositories");
        let aside = k.data_dir.join("repositories.aside");
        std::fs::rename(&repos, &aside).expect("move repositories aside");
        std::fs::write(&repos, "not a directory").expect("write file");
        let r = k.get("/readyz");
        assert_eq!(r.status, 503, "/readyz with a broken repository folder: {}", r.describe());
        assert!(!r.body.is_empty(), "/readyz 503 says why");
        assert_eq!(k.get("/healthz").status, 200, "/healthz stays 200 while not ready");
        std::fs::remove_file(&repos).expect("rm file");
        std::fs::rename(&aside, &repos).expect("move back");
        let r = k.get("/readyz");
        assert_eq!(r.status, 200, "/readyz after repair: {}", r.describe());
    }

    fn api_repos_and_user(b: Backend) {
        let k = Kura::start(b);
        k.add_user("alice", "alice-pass-123");
        k.add_user("bob", "bob-pass-1234");
        let tok = k.token("alice", "write");
        let ro = k.token("alice", "read");
        let bob = k.token("bob", "write");
        let admin = k.token("admin", "admin");

        // who am I
        let r = k.req("GET", "/api/v1/user").bearer(&tok).send();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["name"], "alice");
        let r = k.req("GET", "/api/v1/user").basic("alice", &tok).send();
        assert_eq!(r.status, 200, "Basic with the token as password: {}", r.describe());
        assert_eq!(r.json()["name"], "alice");
        let r = k.get("/api/v1/user");
        assert_eq!(r.status, 401, "API without a token: {}", r.describe());
        let r = k.req("GET", "/api/v1/user").bearer("kura_notarealtoken0000000000000000000").send();
        assert_eq!(r.status, 401, "API with a bad token: {}", r.describe());

        // create a repository
        let r = k.req("POST", "/api/v1/repos").bearer(&tok).json(&json!({"namespace": "alice", "name": "lib"})).send();
        assert_eq!(r.status, 201, "create alice/lib: {}", r.describe());
        let _ = r.json();
        let url = k.url_auth("alice", &tok, "alice/lib.git");
        let out = k.git(&k.work, &["clone", &url, "lib"]).assert_ok();
        assert_contains(&out.stderr, "empty repository", "clone of the API-created repository");
        let dir = k.work.join("lib");
        let c = k.commit(&dir, "x.txt", "x\n", "x");
        k.git_ok(&dir, &["push", "-q", "origin", "HEAD:main"]);
        assert_eq!(k.remote_ref(&url, "refs/heads/main"), Some(c));
        let list = k.cli_ok(&["repo", "list"]);
        assert_contains(&list, "alice/lib", "repo list shows the API-created repository");

        // list
        let r = k.req("GET", "/api/v1/repos").bearer(&tok).send();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_contains(&r.text(), "lib", "GET /api/v1/repos");
        let r = k.req("GET", "/api/v1/repos").bearer(&admin).send();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_contains(&r.text(), "lib", "admin's GET /api/v1/repos");

        // errors are JSON
        let r = k.req("POST", "/api/v1/repos").bearer(&tok).json(&json!({"namespace": "alice", "name": "lib"})).send();
        assert!(r.status == 409 || r.status == 400 || r.status == 422, "duplicate: {}", r.describe());
        assert_json_error(&r, r.status, "duplicate repository");
        let r = k.req("POST", "/api/v1/repos").bearer(&tok).json(&json!({"namespace": "alice", "name": ".."})).send();
        assert!(r.status == 400 || r.status == 422, "bad name: {}", r.describe());
        assert_json_error(&r, r.status, "bad name");
        let r = k.req("POST", "/api/v1/repos").bearer(&tok).header("Content-Type", "application/json").body("{not json").send();
        assert!(r.status == 400 || r.status == 422, "malformed JSON: {}", r.describe());
        assert_json_error(&r, r.status, "malformed JSON");
        // a read-scope token cannot create repositories
        let r = k.req("POST", "/api/v1/repos").bearer(&ro).json(&json!({"namespace": "alice", "name": "ro"})).send();
        assert_json_error(&r, 403, "read-scope token creating a repository");
        // nor can bob create one in alice's namespace
        let r = k.req("POST", "/api/v1/repos").bearer(&bob).json(&json!({"namespace": "alice", "name": "bobs"})).send();
        assert!(r.status == 403 || r.status == 404, "bob creating in alice's namespace: {}", r.describe());
        assert_json_error(&r, r.status, "bob creating in alice's namespace");
        let list = k.cli_ok(&["repo", "list"]);
        assert!(!list.contains("alice/ro") && !list.contains("alice/bobs"), "refused creations created nothing:\n{list}");
        // bob does not see alice's private repositories
        let r = k.req("GET", "/api/v1/repos").bearer(&bob).send();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(!r.text().contains("\"lib\"") && !r.text().contains("alice/lib"), "bob's repo list leaks alice/lib: {}", r.text());

        // request ids: returned when absent, kept when given, logged
        let r = k.get("/healthz");
        let id = r.header("x-request-id").unwrap_or_else(|| panic!("no x-request-id: {}", r.describe()));
        assert!(!id.is_empty());
        let r = k.req("GET", "/api/v1/user").bearer(&tok).header("x-request-id", "e2e-req-4242").send();
        assert_eq!(r.header("x-request-id"), Some("e2e-req-4242"), "{}", r.describe());
        let r2 = k.req("GET", "/alice/lib.git/info/refs?service=git-upload-pack").basic("alice", &tok).send();
        assert!(r2.header("x-request-id").is_some(), "git responses carry x-request-id too: {}", r2.describe());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let logs = k.logs();
        assert_contains(&logs, "e2e-req-4242", "the request id appears in the log");
        for s in [&tok, &ro, &bob, &admin] {
            assert!(!logs.contains(s.as_str()), "the log contains a token");
        }
        assert!(!logs.contains("alice-pass-123"), "the log contains a password");
    }
}

both! {
    /// The hand-written OpenAPI document and the router agree: every documented path and method
    /// reaches a handler (not the API's "no such endpoint" fallback, not 405).
    fn openapi_paths_are_routed(b: Backend) {
        let k = Kura::start(b);
        let admin = k.token("admin", "admin");
        let doc = k.get("/api/v1/openapi.json").json();
        let paths = doc["paths"].as_object().expect("paths object");
        assert!(paths.len() >= 10, "openapi.json documents the API: {paths:?}");
        for (path, item) in paths {
            let concrete = path
                .replace("{ns}", "admin")
                .replace("{name}", "nothere")
                .replace("{group}", "nogroup")
                .replace("{user}", "nobody")
                .replace("{id}", "999999");
            for method in item.as_object().expect("path item").keys() {
                let r = k
                    .req(&method.to_uppercase(), &format!("/api/v1{concrete}"))
                    .bearer(&admin)
                    .json(&json!({}))
                    .send();
                assert_ne!(r.status, 405, "{method} {path} is documented but not routed: {}", r.describe());
                let body = String::from_utf8_lossy(&r.body);
                assert!(!body.contains("no such API endpoint"),
                    "{method} {path} is documented but not routed: {}", r.describe());
            }
        }
    }
}

both! {
    fn groups_and_user_deletion_through_the_api(b: Backend) {
        let k = Kura::start(b);
        let admin = k.token("admin", "admin");
        let alice = k.user_with_token("alice");
        let bob = k.user_with_token("bob");
        k.cli_ok(&["group", "add", "team"]);
        k.cli_ok(&["group", "member", "add", "team", "alice", "--role", "write"]);
        k.cli_ok(&["repo", "create", "team/app"]);

        let r = k.req("GET", "/api/v1/groups").bearer(&admin).send();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json(), serde_json::json!([{"name": "team", "members": 1, "repos": 1}]));
        assert_eq!(k.req("GET", "/api/v1/groups").bearer(&alice).send().status, 403, "site admins only");

        let r = k.req("GET", "/api/v1/groups/team").bearer(&alice).send();
        assert_eq!(r.status, 200, "a member reads the group: {}", r.describe());
        assert_eq!(
            r.json(),
            serde_json::json!({"name": "team", "members": [{"user": "alice", "role": "write"}], "repos": ["team/app"]})
        );
        assert_eq!(k.req("GET", "/api/v1/groups/team").bearer(&bob).send().status, 404, "hidden from others");

        let r = k.req("DELETE", "/api/v1/groups/team").bearer(&admin).send();
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_contains(&r.text(), "team/app", "names the repository in the way");
        assert_eq!(k.req("DELETE", "/api/v1/users/bob").bearer(&alice).send().status, 403);
        let r = k.req("DELETE", "/api/v1/users/bob").bearer(&admin).send();
        assert_eq!(r.status, 204, "{}", r.describe());
        assert_eq!(k.req("GET", "/api/v1/user").bearer(&bob).send().status, 401, "bob's token is gone");
        k.cli_ok(&["repo", "delete", "team/app"]);
        assert_eq!(k.req("DELETE", "/api/v1/groups/team").bearer(&admin).send().status, 204);
        assert_eq!(k.req("GET", "/api/v1/groups/team").bearer(&admin).send().status, 404);
    }
}
