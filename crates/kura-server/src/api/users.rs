use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kura_db::{Role, Token, User};
use serde::{Deserialize, Serialize};

use super::{created, no_content, ApiCaller, ApiError, ApiJson, ApiResult};
use crate::access::{self, Actor};
use crate::app::AppState;
use crate::error::HttpError;
use crate::ops::OpsError;

#[derive(Serialize)]
pub struct UserView {
    pub(crate) name: String,
    pub(crate) admin: bool,
    pub(crate) disabled: bool,
    pub(crate) created_at: i64,
    /// `local` or `directory`.
    pub(crate) source: &'static str,
    pub(crate) display_name: Option<String>,
    pub(crate) email: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            name: u.name.clone(),
            admin: u.is_admin,
            disabled: u.disabled,
            created_at: u.created_at,
            source: u.source(),
            display_name: u.directory.as_ref().and_then(|d| d.display_name.clone()),
            email: u.directory.as_ref().and_then(|d| d.email.clone()),
        }
    }
}

#[derive(Serialize)]
pub struct TokenView {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) scope: String,
    pub(crate) expires_at: Option<i64>,
    pub(crate) last_used_at: Option<i64>,
    pub(crate) created_at: i64,
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

fn parse_role(s: &str) -> ApiResult<Role> {
    s.parse()
        .map_err(|m: String| ApiError(HttpError::bad_request(m).code("invalid_role")))
}

pub async fn me(ApiCaller(a): ApiCaller) -> Json<UserView> {
    Json(UserView::from(&a.user))
}

pub async fn list(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
) -> ApiResult<Json<Vec<UserView>>> {
    access::require_site_admin(&a)?;
    let users = s.ops.list_users().await?;
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
    ApiCaller(a): ApiCaller,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<Response> {
    access::require_site_admin(&a)?;
    let (user, generated) = s
        .ops
        .add_user(&body.name, body.password, body.admin)
        .await?;
    Ok(created(serde_json::json!({
        "user": UserView::from(&user),
        "password": generated,
    })))
}

pub async fn disable(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    access::require_site_admin(&a)?;
    s.ops.set_disabled(&name, true).await?;
    Ok(no_content())
}

pub async fn enable(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    access::require_site_admin(&a)?;
    s.ops.set_disabled(&name, false).await?;
    Ok(no_content())
}

/// Self (with a write token) or a site admin.
fn self_or_admin(a: &Actor, name: &str) -> ApiResult<()> {
    let is_self = a.user.name.eq_ignore_ascii_case(name) && a.scope >= Some(Role::Write);
    if !is_self {
        access::require_site_admin(a)?;
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
}

pub async fn password(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<Response> {
    self_or_admin(&a, &name)?;
    // A password is not capped by any scope: only an admin-scope token may set one.
    if a.scope != Some(Role::Admin) {
        return Err(ApiError(
            HttpError::forbidden("setting a password needs a token with scope admin")
                .code("scope_too_narrow"),
        ));
    }
    s.ops.set_password(&name, Some(body.password)).await?;
    Ok(no_content())
}

pub async fn tokens(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<TokenView>>> {
    self_or_admin(&a, &name)?;
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
    ApiCaller(a): ApiCaller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<Response> {
    self_or_admin(&a, &name)?;
    let scope = parse_role(&body.scope)?;
    if Some(scope) > a.scope {
        return Err(ApiError(
            HttpError::forbidden("a token cannot create a token with a wider scope than its own")
                .code("scope_too_narrow"),
        ));
    }
    let mut expires_in = match body.expires_in.as_deref() {
        Some(e) => Some(kura_proto::parse_lifetime(e).map_err(|why| {
            ApiError(HttpError::bad_request(format!("expires_in: {why}")).code("invalid_expiry"))
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
        .create_token(&name, scope, expires_in, body.name.as_deref())
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
    ApiCaller(a): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let tok = s.ops.token(id).await?;
    if !access::may_manage_token(&a, tok.user_id) {
        return Err(OpsError::TokenNotFound(id).into());
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
    ApiCaller(a): ApiCaller,
    ApiJson(body): ApiJson<NewGroup>,
) -> ApiResult<Response> {
    access::require_site_admin(&a)?;
    s.ops.add_group(&body.name).await?;
    Ok(created(serde_json::json!({ "name": body.name })))
}

#[derive(Serialize)]
pub struct GroupSummaryView {
    pub(crate) name: String,
    pub(crate) members: i64,
    pub(crate) repos: i64,
}

#[derive(Serialize)]
pub struct MemberView {
    pub(crate) user: String,
    pub(crate) role: &'static str,
}

#[derive(Serialize)]
pub struct GroupView {
    pub(crate) name: String,
    pub(crate) members: Vec<MemberView>,
    pub(crate) repos: Vec<String>,
}

pub async fn list_groups(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
) -> ApiResult<Response> {
    access::require_site_admin(&a)?;
    let groups: Vec<GroupSummaryView> = s
        .ops
        .list_groups()
        .await?
        .into_iter()
        .map(|(g, members, repos)| GroupSummaryView {
            name: g.name,
            members,
            repos,
        })
        .collect();
    Ok(Json(groups).into_response())
}

/// Site admins and the group's members; to anyone else the group does not exist.
pub async fn show_group(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path(group): Path<String>,
) -> ApiResult<Response> {
    if s.ops.namespace_role(&a.user, &group).await?.is_none() {
        return Err(OpsError::GroupNotFound(group).into());
    }
    let (g, members, repos) = s.ops.show_group(&group).await?;
    Ok(Json(GroupView {
        name: g.name,
        members: members
            .into_iter()
            .map(|(user, role)| MemberView {
                user,
                role: role.as_str(),
            })
            .collect(),
        repos: repos.iter().map(|r| r.full_name()).collect(),
    })
    .into_response())
}

pub async fn delete_group(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path(group): Path<String>,
) -> ApiResult<Response> {
    access::require_site_admin(&a)?;
    s.ops.delete_group(&group).await?;
    Ok(no_content())
}

pub async fn delete_user(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    access::require_site_admin(&a)?;
    s.ops.delete_user(&name).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
pub struct Membership {
    role: String,
}

pub async fn set_member(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((group, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<Membership>,
) -> ApiResult<Response> {
    access::require_namespace_admin(&s.ops, &a, &group).await?;
    let role = parse_role(&body.role)?;
    s.ops.set_member(&group, &user, role).await?;
    Ok(no_content())
}

pub async fn remove_member(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    Path((group, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    access::require_namespace_admin(&s.ops, &a, &group).await?;
    s.ops.remove_member(&group, &user).await?;
    Ok(no_content())
}
