use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};
use kura_db::{Role, Token, User};
use serde::{Deserialize, Serialize};

use super::{actor, created, no_content, require_site_admin, ApiError, ApiJson, ApiResult};
use crate::app::AppState;
use crate::error::HttpError;
use crate::netguard::ClientIp;

#[derive(Serialize)]
pub struct UserView {
    name: String,
    admin: bool,
    disabled: bool,
    created_at: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            name: u.name.clone(),
            admin: u.is_admin,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct TokenView {
    id: i64,
    name: String,
    scope: String,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    created_at: i64,
}

impl From<&Token> for TokenView {
    fn from(t: &Token) -> TokenView {
        TokenView {
            id: t.id,
            name: t.name.clone(),
            scope: t.scope.to_string(),
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            created_at: t.created_at,
        }
    }
}

pub async fn me(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
) -> ApiResult<Json<UserView>> {
    let a = actor(&s, &h, ip).await?;
    Ok(Json(UserView::from(&a.user)))
}

pub async fn list(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
) -> ApiResult<Json<Vec<UserView>>> {
    require_site_admin(&actor(&s, &h, ip).await?)?;
    let users = s.ops.db.list_users().await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

#[derive(Deserialize)]
pub struct NewUser {
    name: String,
    password: Option<String>,
    #[serde(default)]
    admin: bool,
}

pub async fn create(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<Response> {
    require_site_admin(&actor(&s, &h, ip).await?)?;
    let (user, generated) = s
        .ops
        .add_user(&body.name, body.password, body.admin)
        .await?;
    Ok(created(serde_json::json!({
        "user": UserView::from(&user),
        "password": generated,
    })))
}

async fn set_disabled(
    s: AppState,
    ip: ClientIp,
    h: HeaderMap,
    name: &str,
    d: bool,
) -> ApiResult<Response> {
    require_site_admin(&actor(&s, &h, ip).await?)?;
    s.ops.set_disabled(name, d).await?;
    Ok(no_content())
}

pub async fn disable(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    set_disabled(s, ip, h, &name, true).await
}

pub async fn enable(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    set_disabled(s, ip, h, &name, false).await
}

/// Self (with a write token) or a site admin.
async fn self_or_admin(
    s: &AppState,
    ip: ClientIp,
    h: &HeaderMap,
    name: &str,
) -> ApiResult<crate::ops::Actor> {
    let a = actor(s, h, ip).await?;
    let is_self = a.user.name.eq_ignore_ascii_case(name) && a.scope >= Some(Role::Write);
    if !is_self {
        require_site_admin(&a)?;
    }
    Ok(a)
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
}

pub async fn password(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<Response> {
    let a = self_or_admin(&s, ip, &h, &name).await?;
    // A password is not capped by any scope: only an admin-scope token may set one.
    if a.scope != Some(Role::Admin) {
        return Err(ApiError(HttpError::forbidden(
            "setting a password needs a token with scope admin (or kura user passwd on the server)",
        )));
    }
    s.ops.set_password(&name, Some(body.password)).await?;
    Ok(no_content())
}

pub async fn tokens(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<TokenView>>> {
    self_or_admin(&s, ip, &h, &name).await?;
    let tokens = s.ops.list_tokens(&name).await?;
    Ok(Json(tokens.iter().map(TokenView::from).collect()))
}

#[derive(Deserialize)]
pub struct NewToken {
    scope: String,
    expires_in: Option<String>,
    name: Option<String>,
}

pub async fn create_token(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<Response> {
    let a = self_or_admin(&s, ip, &h, &name).await?;
    let scope: Role = body
        .scope
        .parse()
        .map_err(|m: String| ApiError(HttpError::bad_request(m)))?;
    if Some(scope) > a.scope {
        return Err(ApiError(HttpError::forbidden(
            "a token cannot create a token with a wider scope than its own",
        )));
    }
    let mut expires_in = match body.expires_in.as_deref() {
        Some(e) => Some(humantime::parse_duration(e).map_err(|_| {
            ApiError(HttpError::bad_request(format!(
                "expires_in {e:?} is not a duration: write e.g. 90d or 12h"
            )))
        })?),
        None => None,
    };
    // A token cannot outlive the token that made it.
    if let Some(limit) = a.token_expires_at {
        let left = std::time::Duration::from_secs((limit - kura_db::now()).max(1) as u64);
        if expires_in.is_none_or(|e| e > left) {
            expires_in = Some(left);
        }
    }
    let (token, rec) = s
        .ops
        .create_token(&name, scope.as_str(), expires_in, body.name.as_deref())
        .await?;
    Ok(created(serde_json::json!({
        "token": token,
        "id": rec.id,
        "scope": rec.scope.as_str(),
        "expires_at": rec.expires_at,
    })))
}

pub async fn revoke_token(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let a = actor(&s, &h, ip).await?;
    let tok = s.ops.token(id).await?;
    if tok.user_id != a.user.id {
        require_site_admin(&a)?;
    }
    s.ops.revoke_token(id).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
pub struct NewGroup {
    name: String,
}

pub async fn create_group(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    ApiJson(body): ApiJson<NewGroup>,
) -> ApiResult<Response> {
    require_site_admin(&actor(&s, &h, ip).await?)?;
    s.ops.add_group(&body.name).await?;
    Ok(created(serde_json::json!({ "name": body.name })))
}

#[derive(Deserialize)]
pub struct Membership {
    role: String,
}

async fn group_admin(s: &AppState, ip: ClientIp, h: &HeaderMap, group: &str) -> ApiResult<()> {
    let a = actor(s, h, ip).await?;
    let role = s
        .ops
        .namespace_role(&a.user, group)
        .await?
        .map(|r| a.cap(r));
    if role == Some(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError(HttpError::forbidden(format!(
            "managing members of {group} needs admin in the group and a token with scope admin"
        ))))
    }
}

pub async fn set_member(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((group, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<Membership>,
) -> ApiResult<Response> {
    group_admin(&s, ip, &h, &group).await?;
    s.ops.set_member(&group, &user, &body.role).await?;
    Ok(no_content())
}

pub async fn remove_member(
    State(s): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    h: HeaderMap,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    group_admin(&s, ip, &h, &group).await?;
    s.ops.remove_member(&group, &user).await?;
    Ok(no_content())
}
