//! `/api/v1`: a JSON API for administration and automation, authenticated with tokens. Every
//! error is `{"error": "..."}` with a message that says what to do.

mod mirrors;
mod repos;
mod triggers;
mod users;

#[cfg(test)]
mod openapi_tests;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use kura_db::{Repo, Role};
use serde::de::DeserializeOwned;

use crate::access::{self, Actor, Caller, Denied};
use crate::app::AppState;
use crate::error::HttpError;
use crate::names::RepoPath;
use crate::ops::OpsError;

const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/user", get(users::me))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{name}/disable", post(users::disable))
        .route("/users/{name}/enable", post(users::enable))
        .route("/users/{name}/password", put(users::password))
        .route(
            "/users/{name}/tokens",
            get(users::tokens).post(users::create_token),
        )
        .route("/tokens/{id}", delete(users::revoke_token))
        .route("/users/{name}", delete(users::delete_user))
        .route("/groups", get(users::list_groups).post(users::create_group))
        .route(
            "/groups/{group}",
            get(users::show_group).delete(users::delete_group),
        )
        .route(
            "/groups/{group}/members/{user}",
            put(users::set_member).delete(users::remove_member),
        )
        .route("/repos", get(repos::list).post(repos::create))
        .route(
            "/repos/{ns}/{name}",
            get(repos::show).patch(repos::update).delete(repos::remove),
        )
        .route(
            "/repos/{ns}/{name}/grants/{user}",
            put(repos::grant).delete(repos::revoke),
        )
        .route(
            "/repos/{ns}/{name}/protections",
            get(repos::protections)
                .post(repos::protect)
                .delete(repos::unprotect),
        )
        .route(
            "/repos/{ns}/{name}/mirrors",
            get(mirrors::list).post(mirrors::add),
        )
        .route(
            "/repos/{ns}/{name}/mirrors/{id}",
            get(mirrors::show).delete(mirrors::remove),
        )
        .route("/repos/{ns}/{name}/mirrors/{id}/sync", post(mirrors::sync))
        .route("/repos/{ns}/{name}/pushes", get(repos::pushes))
        .route("/repos/{ns}/{name}/maintain", post(repos::maintain))
        .route(
            "/repos/{ns}/{name}/triggers",
            get(triggers::repo_list).post(triggers::repo_add),
        )
        .route(
            "/repos/{ns}/{name}/triggers/{id}",
            get(triggers::repo_show).delete(triggers::repo_remove),
        )
        .route(
            "/repos/{ns}/{name}/deliveries",
            get(triggers::repo_deliveries),
        )
        .route(
            "/repos/{ns}/{name}/deliveries/{id}",
            get(triggers::repo_delivery),
        )
        .route(
            "/repos/{ns}/{name}/deliveries/{id}/redeliver",
            post(triggers::repo_redeliver),
        )
        .route(
            "/triggers",
            get(triggers::server_list).post(triggers::server_add),
        )
        .route(
            "/triggers/{id}",
            get(triggers::server_show).delete(triggers::server_remove),
        )
        .route("/deliveries", get(triggers::server_deliveries))
        .route("/deliveries/{id}", get(triggers::server_delivery))
        .route(
            "/deliveries/{id}/redeliver",
            post(triggers::server_redeliver),
        )
        .fallback(|| async {
            ApiError(HttpError::not_found(
                "no such API endpoint; see /api/v1/openapi.json",
            ))
        })
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// An `HttpError` rendered as JSON.
pub struct ApiError(pub HttpError);

impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> ApiError {
        ApiError(e)
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> ApiError {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.json().into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `Json<T>` whose rejections are JSON errors too.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(ApiError(HttpError::new(
                r.status(),
                format!(
                    "{}; send a JSON body as described in /api/v1/openapi.json",
                    r.body_text()
                ),
            ))),
        }
    }
}

/// `Query<T>` whose rejections are JSON errors too.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(ApiError(HttpError::new(
                r.status(),
                format!(
                    "{}; see the operation's parameters in /api/v1/openapi.json",
                    r.body_text()
                ),
            ))),
        }
    }
}

/// `Path<T>` whose rejections (an id that is not a number) are JSON errors too.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(ApiError(HttpError::new(
                r.status(),
                format!(
                    "{}; see the operation's path in /api/v1/openapi.json",
                    r.body_text()
                ),
            ))),
        }
    }
}

/// The token holder making the request: the API's extractor. Passwords are refused
/// (automation uses tokens), and so are anonymous callers.
pub struct ApiCaller(pub Actor);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<ApiCaller> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::User(a) if a.scope.is_some() => Ok(ApiCaller(a)),
            Caller::User(_) => Err(ApiError(
                HttpError::unauthorized(
                    "the API takes an access token, not a password: create a token and send it as Authorization: Bearer TOKEN",
                )
                .code("token_required"),
            )),
            Caller::Anonymous => Err(ApiError(
                HttpError::unauthorized("sign in with a token: Authorization: Bearer kura_...")
                    .code("unauthenticated"),
            )),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> ApiError {
        ApiError(match d {
            Denied::Hidden { repo, .. } => {
                HttpError::not_found(format!("repository {repo} not found")).code("repo_not_found")
            }
            Denied::SignIn { repo, need } => HttpError::unauthorized(format!(
                "{repo} needs {need} access: sign in with a token"
            )),
            Denied::Scope { repo, scope, need } => HttpError::forbidden(format!(
                "this token has scope {scope} but this needs {need} access to {repo}; use a token with scope {need}"
            ))
            .code("scope_too_narrow"),
            Denied::Role { repo, role, need } => HttpError::forbidden(format!(
                "you have {role} access to {repo} but this needs {need}; ask an admin of {repo}"
            ))
            .code("role_too_low"),
            Denied::SiteAdmin => {
                HttpError::forbidden("this needs a site admin's token with scope admin")
                    .code("site_admin_required")
            }
            Denied::NamespaceAdmin { namespace } => HttpError::forbidden(format!(
                "this needs admin of {namespace} and a token with scope admin (scope write is enough to create repositories there); ask an admin of {namespace}"
            ))
            .code("namespace_admin_required"),
            Denied::Failed(e) => e.into(),
        })
    }
}

/// A validated repository path from the URL.
pub fn repo_path(ns: &str, name: &str) -> ApiResult<RepoPath> {
    RepoPath::new(ns, name).map_err(|m| ApiError(HttpError::bad_request(m).code("invalid_name")))
}

/// The repository at `ns/name`, if the token holder has at least `need` on it.
pub async fn repo_for(
    s: &AppState,
    a: &Actor,
    ns: &str,
    name: &str,
    need: Role,
) -> ApiResult<Repo> {
    let path = repo_path(ns, name)?;
    let caller = Caller::User(a.clone());
    let access =
        access::require(&s.ops, s.config.allow_anonymous_read, &caller, &path, need).await?;
    Ok(access.repo)
}

pub fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `http://host` as the client reached us, unless `public_url` is configured.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    state.config.base_url_for(host)
}
