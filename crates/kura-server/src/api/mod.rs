//! `/api/v1`: a JSON API for administration and automation, authenticated with tokens. Every
//! error is `{"error": "..."}` with a message that says what to do.

mod mirrors;
mod repos;
mod users;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use kura_db::{Repo, Role};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::auth::{self, Caller};
use crate::error::HttpError;
use crate::netguard::ClientIp;
use crate::ops::{Actor, OpsError};

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
        .route("/groups", post(users::create_group))
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

impl From<kura_db::DbError> for ApiError {
    fn from(e: kura_db::DbError) -> ApiError {
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

/// The token holder making the request. Passwords are refused: automation uses tokens.
pub async fn actor(state: &AppState, headers: &HeaderMap, ip: ClientIp) -> ApiResult<Actor> {
    match auth::authenticate(state, headers, ip.0).await? {
        Caller::User(a) if a.scope.is_some() => Ok(a),
        Caller::User(_) => Err(ApiError(HttpError::unauthorized(
            "the API takes an access token, not a password: create one with kura token create USER --scope write",
        ))),
        Caller::Anonymous => Err(ApiError(HttpError::unauthorized(
            "sign in with a token: Authorization: Bearer kura_...",
        ))),
    }
}

pub fn require_site_admin(a: &Actor) -> ApiResult<()> {
    if a.user.is_admin && a.scope == Some(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError(HttpError::forbidden(
            "this needs a site admin's token with scope admin",
        )))
    }
}

/// The repository, if the actor may see it and has `need` on it (after the token cap).
pub async fn repo_for(
    state: &AppState,
    a: &Actor,
    ns: &str,
    name: &str,
    need: Role,
) -> ApiResult<Repo> {
    let not_found = || {
        ApiError(HttpError::not_found(format!(
            "repository {ns}/{name} not found"
        )))
    };
    let Some(repo) = state
        .ops
        .db
        .repo_by_name(ns, name.trim_end_matches(".git"))
        .await?
    else {
        return Err(not_found());
    };
    let Some(full) = state.ops.role_of(&a.user, &repo).await? else {
        return Err(not_found());
    };
    let role = a.cap(full);
    if role < need {
        return Err(ApiError(HttpError::forbidden(format!(
            "you have {role} access to {} (with this token) but this needs {need}",
            repo.full_name()
        ))));
    }
    Ok(repo)
}

pub fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `http://host` as the client reached us, unless `public_url` is configured.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    match &state.config.public_url {
        Some(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(&state.config.listen);
            format!("http://{host}")
        }
    }
}
