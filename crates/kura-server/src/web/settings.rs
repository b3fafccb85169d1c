//! `/settings`: the signed-in user's password and access tokens (a new token is shown once).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kura_db::Role;
use kura_proto::Credentials;
use serde::Deserialize;

use super::render::{age, utc};
use super::{page, Chrome, Visitor, WebError};
use crate::access::Caller;
use crate::app::AppState;
use crate::netguard::ClientIp;

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scope: &'static str,
    pub created: String,
    pub expires: String,
    pub last_used: String,
}

#[derive(askama::Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    user: String,
    /// A directory user's password is changed in the directory, not here.
    from_directory: bool,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn render(
    s: &AppState,
    v: &Visitor,
    new_token: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let name = v.user().map(|a| a.user.name.clone()).unwrap_or_default();
    let from_directory = v.user().is_some_and(|a| a.user.directory.is_some());
    let now = kura_db::now();
    let tokens = s
        .ops
        .list_tokens(&name)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            scope: t.scope.as_str(),
            created: utc(t.created_at),
            expires: match t.expires_at {
                Some(e) if e <= now => "expired".into(),
                Some(e) => format!(
                    "in {}",
                    kura_proto::format_duration(std::time::Duration::from_secs((e - now) as u64))
                ),
                None => "never".into(),
            },
            last_used: t
                .last_used_at
                .map(|u| age(u, now))
                .unwrap_or_else(|| "never".into()),
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut r = page(SettingsPage {
        chrome: v.chrome.clone(),
        user: name,
        from_directory,
        tokens,
        new_token,
        notice,
        error,
    });
    *r.status_mut() = status;
    // A page that may show a new token is never stored by the browser.
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

pub async fn show(State(s): State<AppState>, v: Visitor) -> Result<Response, WebError> {
    if let Err(r) = v.require_user() {
        return Ok(r.into_response());
    }
    render(&s, &v, None, None, None).await
}

#[derive(Deserialize)]
pub struct NewToken {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_in: String,
}

pub async fn create_token(
    State(s): State<AppState>,
    v: Visitor,
    Form(f): Form<NewToken>,
) -> Result<Response, WebError> {
    let Ok(actor) = v.require_user() else {
        return Ok(Redirect::to("/login?next=/settings").into_response());
    };
    v.check_csrf(&f.csrf)?;
    let user = actor.user.name.clone();
    let Ok(scope) = f.scope.parse::<Role>() else {
        return render(
            &s,
            &v,
            None,
            None,
            Some("Choose the token's scope: read, write or admin.".into()),
        )
        .await;
    };
    let expires = match f.expires_in.trim() {
        "" | "never" => None,
        t => match kura_proto::parse_lifetime(t) {
            Ok(d) => Some(d),
            Err(why) => {
                return render(
                    &s,
                    &v,
                    None,
                    None,
                    Some(format!(
                        "Expires in: {why}. Leave it empty for a token that does not expire."
                    )),
                )
                .await
            }
        },
    };
    let name = f.name.trim();
    let name = if name.is_empty() { "web" } else { name };
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return render(
            &s,
            &v,
            None,
            None,
            Some("Name the token in at most 100 characters, on one line.".into()),
        )
        .await;
    }
    match s.ops.create_token(&user, scope, expires, Some(name)).await {
        Ok((secret, _)) => {
            render(
                &s,
                &v,
                Some(secret),
                Some("Copy the token now: it is shown only once.".into()),
                None,
            )
            .await
        }
        Err(e) if e.kind() == crate::ops::ErrorKind::Invalid => {
            render(&s, &v, None, None, Some(e.to_string())).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn revoke_token(
    State(s): State<AppState>,
    v: Visitor,
    Path(id): Path<i64>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    let Ok(actor) = v.require_user() else {
        return Ok(Redirect::to("/login?next=/settings").into_response());
    };
    v.check_csrf(&f.csrf)?;
    // Someone else's token answers like a missing one.
    match s.ops.token(id).await {
        Ok(t) if crate::access::may_manage_token(actor, t.user_id) => {
            s.ops.revoke_token(id).await?
        }
        Ok(_) | Err(_) => {
            return Err(WebError::not_found(format!(
                "You have no token with id {id}; the list on this page shows yours."
            )))
        }
    }
    Ok(Redirect::to("/settings").into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

pub async fn password(
    State(s): State<AppState>,
    v: Visitor,
    ip: axum::extract::Extension<ClientIp>,
    Form(f): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let Ok(actor) = v.require_user() else {
        return Ok(Redirect::to("/login?next=/settings").into_response());
    };
    v.check_csrf(&f.csrf)?;
    let name = actor.user.name.clone();
    // The current password is checked like any sign-in (and counts toward the throttle).
    let creds = Credentials::Password {
        user: name.clone(),
        secret: f.current,
    };
    match crate::auth::check(&s, creds, ip.0 .0).await {
        Ok(Caller::User(_)) => {}
        Ok(Caller::Anonymous) | Err(_) => {
            return render(
                &s,
                &v,
                None,
                None,
                Some("The current password is wrong.".into()),
            )
            .await;
        }
    }
    if let Err(e) = s.ops.set_password(&name, Some(f.new)).await {
        return match e.kind() {
            crate::ops::ErrorKind::Invalid => render(&s, &v, None, None, Some(e.to_string())).await,
            _ => Err(e.into()),
        };
    }
    // Every session ended with the old password; this browser gets a new one.
    let fresh = s
        .ops
        .start_session(&actor.user, s.config.session_ttl)
        .await?;
    let mut r = Redirect::to("/settings").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        super::session::session_cookie(&s, fresh.secret),
    );
    Ok(r)
}
