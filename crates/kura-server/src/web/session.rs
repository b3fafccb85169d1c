//! Who is looking at a page: a session cookie (`kura_session`: HttpOnly, SameSite=Lax, Secure
//! when `public_url` is https), stored in the database so any replica serves it. Sign-in goes
//! through the same credential check and throttle as git; the session is new at every sign-in.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use cookie::{Cookie, SameSite};
use kura_proto::Credentials;
use serde::Deserialize;

use super::{page, Chrome, WebError};
use crate::access::{Actor, Caller};
use crate::app::AppState;
use crate::netguard::ClientIp;

const SESSION: &str = "kura_session";
/// The sign-in form's own token (double submit: cookie and field must match), since there is
/// no session yet to hold one.
const LOGIN_CSRF: &str = "kura_login";

pub struct Visitor {
    pub caller: Caller,
    pub chrome: Chrome,
    secret: Option<String>,
}

impl Visitor {
    pub fn user(&self) -> Option<&Actor> {
        self.caller.actor()
    }

    /// Refuses a form whose token does not match the session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), WebError> {
        if self.secret.is_some() && !token.is_empty() && same(token, &self.chrome.csrf) {
            Ok(())
        } else {
            Err(WebError::new(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is out of date or did not come from Kura. Go back, reload the page and try again.",
            ))
        }
    }

    /// The signed-in user, or a redirect to the sign-in page that comes back here.
    pub fn require_user(&self) -> Result<&Actor, Redirect> {
        self.user()
            .ok_or_else(|| Redirect::to(&self.chrome.login_href()))
    }
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_string()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Visitor, WebError> {
        let here = parts.uri.path().to_string();
        let mut v = Visitor {
            caller: Caller::Anonymous,
            chrome: Chrome {
                here,
                ..Chrome::default()
            },
            secret: None,
        };
        if let Some(secret) = cookie_value(&parts.headers, SESSION) {
            if let Some(s) = state.ops.session(&secret).await? {
                if !s.user.disabled {
                    v.chrome.user = Some(s.user.name.clone());
                    v.chrome.csrf = s.csrf;
                    v.caller = Caller::User(Actor {
                        user: s.user,
                        scope: None,
                        token_expires_at: None,
                    });
                    v.secret = Some(secret);
                }
            }
        }
        // Without a session, `Authorization` works too (scripts, curl); such a visitor has no
        // CSRF token, so it can read pages but never submit their forms.
        if v.secret.is_none() && parts.headers.contains_key(header::AUTHORIZATION) {
            v.caller = match Caller::from_request_parts(parts, state).await {
                Ok(c) => c,
                Err(e) => return Err(WebError::new(e.status, "Sign-in failed", e.message)),
            };
            v.chrome.user = v.caller.actor().map(|a| a.user.name.clone());
        }
        if let Some(slot) = parts.extensions.get::<Arc<OnceLock<Chrome>>>() {
            let _ = slot.set(v.chrome.clone());
        }
        Ok(v)
    }
}

fn secure(state: &AppState) -> bool {
    state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
}

fn set_cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut c = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(state));
    if let Some(secs) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(secs));
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// Only a path on this site: never `//host` or `/\host`, which browsers treat as another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs (`/\t/host` is `//host`): none allowed.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace())
                && !n.starts_with("/login") =>
        {
            n.to_string()
        }
        _ => "/".into(),
    }
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    user: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_form(
    state: &AppState,
    mut chrome: Chrome,
    next: String,
    user: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    chrome.csrf = kura_db::secrets::random_secret(32);
    let cookie = set_cookie(state, LOGIN_CSRF, chrome.csrf.clone(), Some(3600));
    let mut r = page(LoginPage {
        chrome,
        next,
        user,
        error,
    });
    *r.status_mut() = status;
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r
}

pub async fn login_page(
    State(state): State<AppState>,
    v: Visitor,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if v.user().is_some() {
        return Redirect::to(&next).into_response();
    }
    login_form(&state, v.chrome, next, String::new(), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    v: Visitor,
    headers: HeaderMap,
    parts: axum::extract::Extension<ClientIp>,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let fail = |msg: String, status| {
        login_form(
            &state,
            v.chrome.clone(),
            next.clone(),
            f.user.clone(),
            Some(msg),
            status,
        )
    };
    let expected = cookie_value(&headers, LOGIN_CSRF).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &f.csrf) {
        return fail(
            "The sign-in form expired; enter your user name and password again.".into(),
            StatusCode::FORBIDDEN,
        );
    }
    if f.user.trim().is_empty() || f.password.is_empty() {
        return fail(
            "Enter your user name and password.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    // A token is not a password: signing in with one would lift its scope for the session.
    if f.password.starts_with(kura_db::secrets::TOKEN_PREFIX) {
        return fail(
            "That is an access token: sign in with your password (tokens are for git and the API)."
                .into(),
            StatusCode::BAD_REQUEST,
        );
    }
    let ip: IpAddr = parts.0 .0;
    let creds = Credentials::Password {
        user: f.user.trim().to_string(),
        secret: f.password,
    };
    let actor = match crate::auth::check(&state, creds, ip).await {
        Ok(Caller::User(a)) => a,
        Ok(Caller::Anonymous) => {
            return fail(
                "Enter your user name and password.".into(),
                StatusCode::BAD_REQUEST,
            )
        }
        Err(e) => return fail(e.message, e.status),
    };
    // A new session at every sign-in; the one the browser had (if any) ends.
    if let Some(old) = cookie_value(&headers, SESSION) {
        if let Err(e) = state.ops.end_session(&old).await {
            tracing::warn!(error = %e, "could not end the previous session");
        }
    }
    let s = match state
        .ops
        .start_session(&actor.user, state.config.session_ttl)
        .await
    {
        Ok(s) => s,
        Err(e) => return WebError::from(e).into_response(),
    };
    tracing::info!(user = %actor.user.name, client = %ip, "signed in to the pages");
    let mut r = Redirect::to(&next).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            &state,
            SESSION,
            s.secret,
            Some(state.config.session_ttl.as_secs() as i64),
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_CSRF, String::new(), Some(0)),
    );
    r
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    v: Visitor,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    if let Some(secret) = &v.secret {
        v.check_csrf(&f.csrf)?;
        state.ops.end_session(secret).await?;
    }
    let mut r = Redirect::to("/").into_response();
    // Pages of private repositories leave this browser's cache too.
    r.headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION, String::new(), Some(0)),
    );
    Ok(r)
}

/// The `Set-Cookie` value that opens a session in this browser.
pub fn session_cookie(state: &AppState, secret: String) -> HeaderValue {
    set_cookie(
        state,
        SESSION,
        secret,
        Some(state.config.session_ttl.as_secs() as i64),
    )
}

impl Visitor {
    /// The secret of this visitor's session, to keep it when others are ended.
    pub fn session_secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/alice/app")), "/alice/app");
        assert_eq!(safe_next(Some("//evil.example/x")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(Some("/ /evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
