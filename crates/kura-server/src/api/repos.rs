use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use kura_db::{Protection, Repo, Role};
use serde::{Deserialize, Serialize};

use super::{actor, base_url, created, no_content, repo_for, ApiError, ApiJson, ApiResult};
use crate::app::AppState;
use crate::error::HttpError;
use crate::netguard::ClientIp;

#[derive(Serialize)]
pub struct RepoView {
    namespace: String,
    name: String,
    full_name: String,
    public: bool,
    default_branch: String,
    clone_url: String,
    created_at: i64,
}

fn view(base: &str, r: &Repo) -> RepoView {
    RepoView {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        full_name: r.full_name(),
        public: r.is_public,
        default_branch: r.default_branch.clone(),
        clone_url: format!("{base}/{}.git", r.full_name()),
        created_at: r.created_at,
    }
}

/// Repositories the caller can read.
pub async fn list(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
) -> ApiResult<Json<Vec<RepoView>>> {
    let a = actor(&s, &h, ip).await?;
    let base = base_url(&s, &h);
    let mut out = Vec::new();
    for r in s.ops.list_repos().await? {
        if s.ops.role_of(&a.user, &r).await?.is_some() {
            out.push(view(&base, &r));
        }
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct NewRepo {
    namespace: String,
    name: String,
    #[serde(default)]
    public: bool,
    default_branch: Option<String>,
}

pub async fn create(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    ApiJson(body): ApiJson<NewRepo>,
) -> ApiResult<Response> {
    let a = actor(&s, &h, ip).await?;
    let role = s.ops.namespace_role(&a.user, &body.namespace).await?;
    let allowed = role >= Some(Role::Admin) && a.scope >= Some(Role::Write);
    if !allowed {
        return Err(ApiError(HttpError::forbidden(format!(
            "creating repositories in {} needs admin in that namespace and a token with scope write or admin",
            body.namespace
        ))));
    }
    let repo = s
        .ops
        .create_repo(
            &format!("{}/{}", body.namespace, body.name),
            body.public,
            body.default_branch.as_deref(),
        )
        .await?;
    Ok(created(view(&base_url(&s, &h), &repo)))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<RepoView>> {
    let a = actor(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Read).await?;
    Ok(Json(view(&base_url(&s, &h), &repo)))
}

#[derive(Deserialize)]
pub struct RepoPatch {
    /// `NS/NAME` to rename or move.
    full_name: Option<String>,
    public: Option<bool>,
    default_branch: Option<String>,
}

pub async fn update(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<RepoPatch>,
) -> ApiResult<Json<RepoView>> {
    let a = actor(&s, &h, ip).await?;
    let mut repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    // Every check before any change: a refused move must not leave the settings half-applied.
    if let Some(new_full) = body.full_name.as_deref() {
        let (new_ns, _) =
            crate::names::split_full(new_full).map_err(|m| ApiError(HttpError::bad_request(m)))?;
        let admin_in = |role: Option<Role>| role.map(|r| a.cap(r)) == Some(Role::Admin);
        // Taking a repository out of a namespace needs admin of that namespace, not just a
        // grant on the repository.
        if !admin_in(s.ops.namespace_role(&a.user, &repo.namespace).await?) {
            return Err(ApiError(HttpError::forbidden(format!(
                "moving a repository out of {} needs admin of {}",
                repo.namespace, repo.namespace
            ))));
        }
        if !admin_in(s.ops.namespace_role(&a.user, &new_ns).await?) {
            return Err(ApiError(HttpError::forbidden(format!(
                "moving a repository into {new_ns} needs admin there"
            ))));
        }
    }
    s.ops
        .update_repo(&repo, body.public, body.default_branch.as_deref())
        .await?;
    if let Some(new_full) = body.full_name.as_deref() {
        repo = s.ops.rename_repo(&repo.full_name(), new_full).await?;
    } else {
        repo = s.ops.repo(&repo.full_name()).await?;
    }
    Ok(Json(view(&base_url(&s, &h), &repo)))
}

pub async fn remove(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let a = actor(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops.delete_repo(&repo.full_name()).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
pub struct GrantBody {
    role: String,
}

pub async fn grant(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name, user)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<GrantBody>,
) -> ApiResult<Response> {
    let a = actor(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops.grant(&repo.full_name(), &user, &body.role).await?;
    Ok(no_content())
}

pub async fn revoke(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name, user)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let a = actor(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops.revoke(&repo.full_name(), &user).await?;
    Ok(no_content())
}

pub async fn protections(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Protection>>> {
    let a = actor(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Read).await?;
    Ok(Json(s.ops.protections(&repo).await?))
}

pub async fn protect(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<Protection>,
) -> ApiResult<Response> {
    let a = actor(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops
        .protect(&repo.full_name(), &body.pattern, &body.allow_push)
        .await?;
    Ok(created(body))
}

#[derive(Deserialize)]
pub struct PatternQuery {
    pattern: String,
}

pub async fn unprotect(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<PatternQuery>,
) -> ApiResult<Response> {
    let a = actor(&s, &h, ip).await?;
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops.unprotect(&repo.full_name(), &q.pattern).await?;
    Ok(no_content())
}
