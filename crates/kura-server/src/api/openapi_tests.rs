//! The OpenAPI document against the code, in both directions: every route is documented and
//! every documented operation is routed (read from `routes()`'s source), and every documented
//! response shape has exactly the fields the handlers serialise.

use std::collections::BTreeSet;

use serde_json::Value;

use super::mirrors::MirrorView;
use super::repos::{PushView, RefView, RepoView};
use super::triggers::{AttemptView, DeliveryView, RedeliveryView, TriggerView, VariableView};
use super::users::{GroupSummaryView, GroupView, MemberView, TokenView, UserView};
use super::OPENAPI;

/// `(METHOD, /path)` pairs of the router, parsed from the `.route(...)` calls in `routes()`.
fn routed() -> BTreeSet<(String, String)> {
    let src = include_str!("mod.rs");
    let body = &src[src.find("pub fn routes()").expect("routes()")..];
    let body = &body[..body.find(".fallback(").expect("fallback")];
    let mut out = BTreeSet::new();
    for chunk in body.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).expect("a quoted path");
        for m in ["get", "post", "put", "patch", "delete"] {
            let called = chunk.contains(&format!(" {m}("))
                || chunk.contains(&format!("\n{m}("))
                || chunk.contains(&format!(".{m}("))
                || chunk.contains(&format!("({m}("))
                || chunk
                    .trim_start_matches(|c: char| c != ',')
                    .contains(&format!(", {m}("));
            if called {
                out.insert((m.to_uppercase(), path.to_string()));
            }
        }
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for m in ops.as_object().expect("operations").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_documented_operation_routed() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    let routed = routed();
    let documented = documented(&doc);
    assert!(routed.len() >= 20, "parsed the routes: {routed:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not in openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "in openapi.json but not routed: {unrouted:?}"
    );
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn schema_fields(doc: &Value, name: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let s = &doc["components"]["schemas"][name];
    let props = keys(&s["properties"]);
    let required = s["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    (props, required)
}

fn assert_shape(doc: &Value, schema: &str, sample: Value) {
    let (props, required) = schema_fields(doc, schema);
    let got = keys(&sample);
    assert_eq!(
        got, props,
        "schema {schema}: the handler's fields differ from the document"
    );
    assert!(
        required.is_subset(&got),
        "schema {schema}: required {required:?}"
    );
}

#[tokio::test]
async fn documented_shapes_equal_what_handlers_return() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    fn j(v: impl serde::Serialize) -> Value {
        serde_json::to_value(v).expect("serialises")
    }
    assert_shape(
        &doc,
        "GroupSummary",
        j(GroupSummaryView {
            name: "g".into(),
            members: 1,
            repos: 0,
        }),
    );
    assert_shape(
        &doc,
        "Group",
        j(GroupView {
            name: "g".into(),
            members: vec![MemberView {
                user: "a".into(),
                role: "write",
            }],
            repos: vec!["g/app".into()],
        }),
    );
    assert_shape(
        &doc,
        "User",
        j(UserView {
            name: "a".into(),
            admin: false,
            disabled: false,
            created_at: 0,
            source: "directory",
            display_name: Some("A".into()),
            email: None,
        }),
    );
    assert_shape(
        &doc,
        "Token",
        j(TokenView {
            id: 1,
            name: "t".into(),
            scope: "read".into(),
            expires_at: None,
            last_used_at: None,
            created_at: 0,
        }),
    );
    assert_shape(
        &doc,
        "Repo",
        j(RepoView {
            namespace: "a".into(),
            name: "b".into(),
            full_name: "a/b".into(),
            public: false,
            default_branch: "main".into(),
            clone_url: "http://x/a/b.git".into(),
            created_at: 0,
        }),
    );
    assert_shape(
        &doc,
        "Protection",
        j(kura_db::Protection {
            pattern: "main".into(),
            allow_push: vec![],
        }),
    );
    assert_shape(
        &doc,
        "Mirror",
        j(MirrorView {
            id: 1,
            repo: "a/b".into(),
            url: "codecommit://us-east-1/b".into(),
            branches: vec![],
            keep_divergent_refs: false,
            create: false,
            username: None,
            last_success_at: None,
            last_attempt_at: None,
            last_error: None,
            last_result: None,
            last_duration_ms: None,
            verified: false,
            remote_heads: vec![],
            pending_pushes: 0,
            lag_seconds: 0,
            next_attempt_at: None,
            runs: 0,
            failures: 0,
        }),
    );
    let push = j(PushView {
        id: 1,
        pusher: "a".into(),
        protocol: "http/v0".into(),
        created_at: 0,
        refs: vec![RefView {
            name: "refs/heads/main".into(),
            old: "0".into(),
            new: "1".into(),
        }],
    });
    assert_shape(&doc, "Push", push.clone());
    let ref_schema = &doc["components"]["schemas"]["Push"]["properties"]["refs"]["items"];
    assert_eq!(
        keys(&push["refs"][0]),
        keys(&ref_schema["properties"]),
        "Push.refs items"
    );
    fn trigger_view(
        kind: &'static str,
        format: Option<&'static str>,
        detail_type: Option<String>,
        variables: Option<Vec<VariableView>>,
    ) -> TriggerView {
        TriggerView {
            id: 1,
            repo: Some("a/b".into()),
            kind,
            target: "t".into(),
            format,
            detail_type,
            variables,
            branches: vec![],
            tags: vec![],
            paths: vec![],
            exclude_paths: vec![],
            has_secret: false,
            pending: 0,
            lag_seconds: 0,
            next_attempt_at: None,
            last_attempt_at: None,
            last_success_at: None,
            last_error: None,
            runs: 0,
            failures: 0,
            created_at: 0,
        }
    }
    let trigger = j(trigger_view(
        "codepipeline",
        None,
        None,
        Some(vec![VariableView {
            name: "COMMIT".into(),
            value: "{commit}".into(),
        }]),
    ));
    assert_shape(&doc, "Trigger", trigger.clone());
    let variable_schema =
        &doc["components"]["schemas"]["Trigger"]["properties"]["variables"]["items"];
    assert_eq!(
        keys(&trigger["variables"][0]),
        keys(&variable_schema["properties"]),
        "Trigger.variables items"
    );
    // Every field is there whatever the kind (null where it does not apply).
    assert_shape(
        &doc,
        "Trigger",
        j(trigger_view("webhook", Some("json"), None, None)),
    );
    assert_shape(
        &doc,
        "Trigger",
        j(trigger_view(
            "eventbridge",
            None,
            Some("Kura Push".into()),
            None,
        )),
    );
    let delivery = j(DeliveryView {
        id: 1,
        trigger: 1,
        repo: Some("a/b".into()),
        ref_name: "refs/heads/main".into(),
        before: "0".into(),
        after: "1".into(),
        pusher: "a".into(),
        created_at: 0,
        done_at: None,
        status: "pending",
        attempts: 1,
        last_status: None,
        last_error: None,
        note: None,
        redelivery_of: None,
        attempt_log: Some(vec![AttemptView {
            started_at: 0,
            duration_ms: 1,
            status_code: Some(500),
            error: None,
            response_excerpt: None,
        }]),
    });
    assert_shape(&doc, "Delivery", delivery.clone());
    let attempt_schema =
        &doc["components"]["schemas"]["Delivery"]["properties"]["attempt_log"]["items"];
    assert_eq!(
        keys(&delivery["attempt_log"][0]),
        keys(&attempt_schema["properties"]),
        "Delivery.attempt_log items"
    );
    let (_, required) = schema_fields(&doc, "Delivery");
    assert!(
        !required.contains("attempt_log"),
        "listings leave attempt_log out: it cannot be required"
    );
    assert_shape(
        &doc,
        "Redelivery",
        j(RedeliveryView {
            queued: true,
            delivery: 2,
            redelivery_of: 1,
        }),
    );
    let err = crate::error::HttpError::not_found("x").json();
    let body = error_body(err).await;
    assert_shape(&doc, "Error", body);
}

async fn error_body(e: crate::error::HttpError) -> Value {
    use axum::response::IntoResponse;
    let resp = e.into_response();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("JSON error")
}
