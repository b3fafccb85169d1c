use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kura_db::{Mirror, Role};
use serde::{Deserialize, Serialize};

use super::{actor, created, no_content, repo_for, ApiError, ApiJson, ApiResult};
use crate::app::AppState;
use crate::netguard::ClientIp;
use crate::ops::MirrorRequest;

#[derive(Serialize)]
pub struct MirrorView {
    id: i64,
    repo: String,
    url: String,
    branches: Vec<String>,
    keep_divergent_refs: bool,
    create: bool,
    username: Option<String>,
    last_success_at: Option<i64>,
    last_attempt_at: Option<i64>,
    last_error: Option<String>,
    last_result: Option<String>,
    last_duration_ms: Option<i64>,
    verified: bool,
    remote_heads: Vec<String>,
    pending_pushes: i64,
    lag_seconds: i64,
    next_attempt_at: Option<i64>,
    runs: i64,
    failures: i64,
}

async fn view(s: &AppState, m: Mirror) -> ApiResult<MirrorView> {
    let p = s.ops.mirror_pending(&m).await?;
    let now = kura_db::now();
    Ok(MirrorView {
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
        pending_pushes: p.count,
        lag_seconds: p.oldest_created_at.map(|t| (now - t).max(0)).unwrap_or(0),
        next_attempt_at: (p.count > 0).then_some(m.next_attempt_at.max(now)),
        runs: m.runs,
        failures: m.failures,
    })
}

pub async fn list(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<MirrorView>>> {
    let a = mirror_admin(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    let mut out = Vec::new();
    for m in s.ops.mirrors(Some(&repo.full_name())).await? {
        out.push(view(&s, m).await?);
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
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewMirror>,
) -> ApiResult<Response> {
    let a = mirror_admin(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    let m = s
        .ops
        .add_mirror(
            &repo.full_name(),
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
    Ok(created(view(&s, m).await?))
}

/// Mirrors push with the server's own AWS identity (or stored credentials) to wherever they
/// point, so only site admins manage them.
async fn mirror_admin(s: &AppState, h: &HeaderMap, ip: ClientIp) -> ApiResult<crate::ops::Actor> {
    let a = actor(s, h, ip).await?;
    super::require_site_admin(&a)?;
    Ok(a)
}

async fn one(
    s: &AppState,
    a: &crate::ops::Actor,
    ns: &str,
    name: &str,
    id: i64,
) -> ApiResult<Mirror> {
    let repo = repo_for(s, a, ns, name, Role::Admin).await?;
    s.ops
        .mirror(&repo.full_name(), Some(&id.to_string()))
        .await
        .map_err(ApiError::from)
}

pub async fn show(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name, id)): Path<(String, String, i64)>,
) -> ApiResult<Json<MirrorView>> {
    let a = mirror_admin(&s, &h, ip).await?;
    let m = one(&s, &a, &ns, &name, id).await?;
    Ok(Json(view(&s, m).await?))
}

pub async fn remove(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name, id)): Path<(String, String, i64)>,
) -> ApiResult<Response> {
    let a = mirror_admin(&s, &h, ip).await?;
    let m = one(&s, &a, &ns, &name, id).await?;
    s.ops.db.remove_mirror(m.id).await?;
    Ok(no_content())
}

/// Queues a run now; the server's worker picks it up at once. Poll the mirror for the result.
pub async fn sync(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name, id)): Path<(String, String, i64)>,
) -> ApiResult<Response> {
    let a = mirror_admin(&s, &h, ip).await?;
    let m = one(&s, &a, &ns, &name, id).await?;
    s.ops.sync_mirror(&m).await?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({"queued": true, "mirror": m.id})),
    )
        .into_response())
}
