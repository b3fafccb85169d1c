use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use kura_db::{Protection, Push, Repo, Role};
use serde::{Deserialize, Serialize};

use super::{
    base_url, created, no_content, repo_for, repo_path, ApiCaller, ApiError, ApiJson, ApiResult,
};
use crate::access::{self, Caller};
use crate::app::AppState;
use crate::error::HttpError;
use crate::names::RepoPath;

#[derive(Serialize)]
pub struct RepoView {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) full_name: String,
    pub(crate) public: bool,
    pub(crate) default_branch: String,
    pub(crate) clone_url: String,
    pub(crate) created_at: i64,
}

pub(crate) fn view(base: &str, r: &Repo) -> RepoView {
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
    ApiCaller(a): ApiCaller,
    h: HeaderMap,
) -> ApiResult<Json<Vec<RepoView>>> {
    let base = base_url(&s, &h);
    let caller = Caller::User(a);
    let mut out = Vec::new();
    for r in s.ops.list_repos().await? {
        if let Ok(acc) = access::on(&s.ops, s.config.allow_anonymous_read, &caller, r).await {
            out.push(view(&base, &acc.repo));
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
    ApiCaller(a): ApiCaller,
    h: HeaderMap,
    ApiJson(body): ApiJson<NewRepo>,
) -> ApiResult<Response> {
    let path = repo_path(&body.namespace, &body.name)?;
    access::require_repo_creator(&s.ops, &a, &path.namespace).await?;
    let repo = s
        .ops
        .create_repo(&path, body.public, body.default_branch.as_deref())
        .await?;
    Ok(created(view(&base_url(&s, &h), &repo)))
}

pub async fn show(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<RepoView>> {
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
    ApiCaller(a): ApiCaller,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<RepoPatch>,
) -> ApiResult<Json<RepoView>> {
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    let path = RepoPath {
        namespace: repo.namespace.clone(),
        name: repo.name.clone(),
    };
    // Every check before any change: a refused move must not leave the settings half-applied.
    let to = match body.full_name.as_deref() {
        Some(new_full) => {
            let to: RepoPath = new_full
                .parse()
                .map_err(|m| ApiError(HttpError::bad_request(m).code("invalid_name")))?;
            // Taking a repository out of a namespace needs admin of that namespace, not just
            // a grant on the repository.
            access::require_namespace_admin(&s.ops, &a, &repo.namespace).await?;
            access::require_namespace_admin(&s.ops, &a, &to.namespace).await?;
            Some(to)
        }
        None => None,
    };
    s.ops
        .update_repo(&repo, body.public, body.default_branch.as_deref())
        .await?;
    let repo = match to {
        Some(to) => s.ops.rename_repo(&path, &to).await?,
        None => s.ops.repo(&path).await?,
    };
    Ok(Json(view(&base_url(&s, &h), &repo)))
}

pub async fn remove(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops.delete_repo(&path_of(&repo)).await?;
    Ok(no_content())
}

fn path_of(r: &Repo) -> RepoPath {
    RepoPath {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

#[derive(Deserialize)]
pub struct GrantBody {
    role: String,
}

pub async fn grant(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name, user)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<GrantBody>,
) -> ApiResult<Response> {
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    let role: Role = body
        .role
        .parse()
        .map_err(|m: String| ApiError(HttpError::bad_request(m).code("invalid_role")))?;
    s.ops.grant(&path_of(&repo), &user, role).await?;
    Ok(no_content())
}

pub async fn revoke(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name, user)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops.revoke(&path_of(&repo), &user).await?;
    Ok(no_content())
}

pub async fn protections(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Protection>>> {
    let repo = repo_for(&s, &a, &ns, &name, Role::Read).await?;
    Ok(Json(s.ops.protections(&repo).await?))
}

pub async fn protect(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<Protection>,
) -> ApiResult<Response> {
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops
        .protect(&path_of(&repo), &body.pattern, &body.allow_push)
        .await?;
    Ok(created(body))
}

#[derive(Deserialize)]
pub struct PatternQuery {
    pattern: String,
}

pub async fn unprotect(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<PatternQuery>,
) -> ApiResult<Response> {
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    s.ops.unprotect(&path_of(&repo), &q.pattern).await?;
    Ok(no_content())
}

#[derive(Serialize)]
pub struct PushView {
    pub(crate) id: i64,
    pub(crate) pusher: String,
    pub(crate) protocol: String,
    pub(crate) created_at: i64,
    pub(crate) refs: Vec<RefView>,
}

#[derive(Serialize)]
pub struct RefView {
    #[serde(rename = "ref")]
    pub(crate) name: String,
    pub(crate) old: String,
    pub(crate) new: String,
}

impl From<Push> for PushView {
    fn from(p: Push) -> PushView {
        PushView {
            id: p.id,
            pusher: p.pusher,
            protocol: p.protocol,
            created_at: p.created_at,
            refs: p
                .refs
                .into_iter()
                .map(|r| RefView {
                    name: r.name,
                    old: r.old,
                    new: r.new,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
pub struct PushesQuery {
    limit: Option<i64>,
    /// The `id` of the last push of the previous page.
    before: Option<i64>,
}

/// The push log, newest first; readers of the repository only.
pub async fn pushes(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<PushesQuery>,
) -> ApiResult<Json<Vec<PushView>>> {
    let repo = repo_for(&s, &a, &ns, &name, Role::Read).await?;
    let pushes = s.ops.pushes(&repo, q.before, q.limit.unwrap_or(20)).await?;
    Ok(Json(pushes.into_iter().map(PushView::from).collect()))
}

#[derive(Deserialize)]
pub struct MaintainQuery {
    #[serde(default)]
    full: bool,
}

/// Maintains the repository now (repository admins), as `kura repo maintain` does; the
/// answer says what was done. `409` while a run is going on (here or in another replica).
pub async fn maintain(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((ns, name)): Path<(String, String)>,
    super::ApiQuery(q): super::ApiQuery<MaintainQuery>,
) -> ApiResult<Response> {
    use axum::response::IntoResponse;
    let repo = repo_for(&s, &a, &ns, &name, Role::Admin).await?;
    match crate::maintenance::maintain(&s, &repo, q.full).await? {
        crate::ops::Maintained::Done {
            summary,
            duration_ms,
        } => Ok(Json(serde_json::json!({"summary": summary, "duration_ms": duration_ms})).into_response()),
        crate::ops::Maintained::Busy => Err(ApiError(
            HttpError::new(
                axum::http::StatusCode::CONFLICT,
                format!(
                    "maintenance of {} is running already, or another replica is changing the repository; try again in a minute",
                    repo.full_name()
                ),
            )
            .code("maintenance_running"),
        )),
    }
}
