use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kura_db::{Mirror, Role};
use serde::{Deserialize, Serialize};

use super::{created, no_content, repo_for, ApiCaller, ApiJson, ApiResult};
use crate::access::{self, Actor};
use crate::app::AppState;
use crate::names::RepoPath;
use crate::ops::{DeliveryStatus, MirrorRequest};

#[derive(Serialize)]
pub struct MirrorView {
    pub(crate) id: i64,
    pub(crate) repo: String,
    pub(crate) url: String,
    pub(crate) branches: Vec<String>,
    pub(crate) keep_divergent_refs: bool,
    pub(crate) create: bool,
    pub(crate) username: Option<String>,
    pub(crate) last_success_at: Option<i64>,
    pub(crate) last_attempt_at: Option<i64>,
    pub(crate) last_error: Option<String>,
    pub(crate) last_result: Option<String>,
    pub(crate) last_duration_ms: Option<i64>,
    pub(crate) verified: bool,
    pub(crate) remote_heads: Vec<String>,
    pub(crate) pending_pushes: i64,
    pub(crate) lag_seconds: i64,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) runs: i64,
    pub(crate) failures: i64,
}

pub(crate) fn view(m: Mirror, st: DeliveryStatus) -> MirrorView {
    MirrorView {
        id: m.id,
        repo: m.repo,
        url: m.url,
        branches: m.branches,
        keep_divergent_refs: m.keep_divergent,
        create: m.create_remote,
        username: m.username,
        last_success_at: m.last_success_at,
        last_attempt_at: m.last_attempt_at,
        last_error: m.last_error,
        last_result: m.last_summary,
        last_duration_ms: m.last_duration_ms,
        verified: m.verified,
        remote_heads: m
            .remote_heads
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect(),
        pending_pushes: st.pending,
        lag_seconds: st.lag_seconds,
        next_attempt_at: st.next_attempt_at,
        runs: m.runs,
        failures: m.failures,
    }
}

async fn described(s: &AppState, m: Mirror) -> ApiResult<MirrorView> {
    let st = s.ops.mirror_status(&m).await?;
    Ok(view(m, st))
}

/// Mirrors push with the server's own AWS identity (or stored credentials) to wherever they
/// point, so only site admins manage them.
async fn mirror_repo(s: &AppState, a: &Actor, ns: &str, name: &str) -> ApiResult<RepoPath> {
    access::require_site_admin(a)?;
    let repo = repo_for(s, a, ns, name, Role::Admin).await?;
    Ok(RepoPath {
        namespace: repo.namespace,
        name: repo.name,
    })
}

pub async fn list(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<MirrorView>>> {
    let path = mirror_repo(&s, &a, &ns, &name).await?;
    let mut out = Vec::new();
    for m in s.ops.mirrors(Some(&path)).await? {
        out.push(described(&s, m).await?);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct NewMirror {
    url: String,
    #[serde(default)]
    create: bool,
    #[serde(default)]
    branches: Vec<String>,
    #[serde(default)]
    keep_divergent_refs: bool,
    username: Option<String>,
    password: Option<String>,
}

pub async fn add(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewMirror>,
) -> ApiResult<Response> {
    let path = mirror_repo(&s, &a, &ns, &name).await?;
    let m = s
        .ops
        .add_mirror(
            &path,
            MirrorRequest {
                url: &body.url,
                create: body.create,
                branches: &body.branches,
                keep_divergent: body.keep_divergent_refs,
                username: body.username.as_deref(),
                password: body.password,
            },
        )
        .await?;
    Ok(created(described(&s, m).await?))
}

async fn one(s: &AppState, a: &Actor, ns: &str, name: &str, id: i64) -> ApiResult<Mirror> {
    let path = mirror_repo(s, a, ns, name).await?;
    Ok(s.ops.mirror(&path, Some(&id.to_string())).await?)
}

pub async fn show(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name, id)): Path<(String, String, i64)>,
) -> ApiResult<Json<MirrorView>> {
    let m = one(&s, &a, &ns, &name, id).await?;
    Ok(Json(described(&s, m).await?))
}

pub async fn remove(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name, id)): Path<(String, String, i64)>,
) -> ApiResult<Response> {
    let path = mirror_repo(&s, &a, &ns, &name).await?;
    s.ops.remove_mirror(&path, Some(&id.to_string())).await?;
    Ok(no_content())
}

/// Queues a run now; the server's worker picks it up at once. Poll the mirror for the result.
pub async fn sync(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name, id)): Path<(String, String, i64)>,
) -> ApiResult<Response> {
    let m = one(&s, &a, &ns, &name, id).await?;
    s.ops.sync_mirror(&m).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({"queued": true, "mirror": m.id})),
    )
        .into_response())
}
