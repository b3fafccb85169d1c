//! Who is calling: one extractor authenticates each request once. Ways in today: HTTP Basic
//! with a password (argon2id, off the async threads) or a token as the password, and `Bearer`
//! tokens, and a directory user's password checked by the company directory (`by_directory`);
//! handlers only ever see a `Caller`. The pages' session cookie is read by `web::Visitor`, never here: git and the
//! API must not act on a browser's cookie.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use kura_db::secrets;
use kura_proto::Credentials;

use crate::access::{Actor, Caller};
use crate::app::AppState;
use crate::error::HttpError;
use crate::netguard::ClientIp;
use crate::passwords::Busy;
use crate::throttle::Key;

fn credentials(headers: &HeaderMap) -> Result<Credentials, HttpError> {
    let value = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    kura_proto::authorization(value, secrets::TOKEN_PREFIX).map_err(|_| {
        HttpError::unauthorized(
            "the Authorization header is malformed: use Basic (user name and password or token) or Bearer TOKEN",
        )
        .code("bad_credentials")
    })
}

const WRONG: &str =
    "wrong user name or password (or token); check them, or ask an administrator to reset them";

impl FromRequestParts<AppState> for Caller {
    type Rejection = HttpError;

    /// Authenticates once per request; later extractors of the same request reuse the result.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, HttpError> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|c| c.0)
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let started = std::time::Instant::now();
        let caller = authenticate(state, &parts.headers, ip).await?;
        tracing::debug!(
            stage = "authenticated",
            us = started.elapsed().as_micros() as u64,
            "request stage"
        );
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Requests without credentials are anonymous and never count as failures (git always asks
/// once without them to get the challenge).
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Caller, HttpError> {
    check(state, credentials(headers)?, ip).await
}

/// Checks credentials with the throttle and the disabled check (the sign-in page uses this
/// too, so a browser sign-in counts exactly like a git one).
pub async fn check(state: &AppState, creds: Credentials, ip: IpAddr) -> Result<Caller, HttpError> {
    let c = &state.config;
    // Tokens are too long to guess: count their failures per address only, so that wrong
    // passwords for a user never lock out that user's automation. A user name has a higher
    // ceiling than an address, so guessing from one address cannot lock its owner out
    // everywhere.
    let mut keys = vec![Key::new(format!("ip:{ip}"), c.auth_max_failures)];
    match &creds {
        Credentials::None => return Ok(Caller::Anonymous),
        Credentials::Password { user, .. } => keys.push(Key::new(
            format!("user:{}", user.to_lowercase()),
            c.auth_max_failures_per_user.max(c.auth_max_failures),
        )),
        Credentials::Token(_) => {}
    }
    // Counted before the work: a burst gets at most the ceiling's worth of checks.
    if let Err(wait) = state.throttle.attempt(&keys) {
        let secs = wait.as_secs().max(1);
        tracing::warn!(client = %ip, "sign-in throttled");
        let mut e = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed sign-ins from this address or for this user; wait {secs} seconds and try again"),
        )
        .code("throttled");
        e.retry_after = Some(secs);
        return Err(e);
    }
    let result = match creds {
        Credentials::None => return Ok(Caller::Anonymous),
        Credentials::Token(t) => by_token(state, &t).await,
        Credentials::Password { user, secret } => by_password(state, &user, secret).await,
    };
    match result {
        Ok(actor) if actor.user.disabled => Err(HttpError::forbidden(format!(
            "the account {} is disabled; ask an administrator to enable it",
            actor.user.name
        ))
        .code("account_disabled")),
        Ok(actor) => {
            state.throttle.clear(&keys);
            Ok(Caller::User(actor))
        }
        Err(Failure::Wrong(msg)) => {
            tracing::info!(client = %ip, "failed sign-in");
            Err(HttpError::unauthorized(msg).code("bad_credentials"))
        }
        // Not the caller's fault: this attempt does not count (the earlier ones still do;
        // clearing them would let a flood that saturates the checks reset its own count).
        Err(Failure::Internal(e)) => {
            state.throttle.forgive(&keys);
            Err(e)
        }
    }
}

fn actor(user: kura_db::User) -> Actor {
    Actor {
        user,
        scope: None,
        token_expires_at: None,
    }
}

/// A directory user's password: from a recent check when its facts did not change since,
/// else from the directory (which also brings the user's roles in line).
async fn by_directory(state: &AppState, login: &str, password: String) -> Result<Actor, Failure> {
    if let Some((id, synced_at)) = state.remembered.recall(login, &password) {
        if let Some(u) = state.ops.user_by_id(id).await? {
            if !u.disabled
                && u.directory
                    .as_ref()
                    .is_some_and(|d| d.synced_at == synced_at)
            {
                return Ok(actor(u));
            }
        }
    }
    state.metrics.directory_checked();
    match state.ops.directory_sign_in(login, &password).await? {
        Some(u) => {
            state.remembered.remember(login, &password, &u);
            Ok(actor(u))
        }
        None => Err(Failure::Wrong(WRONG.into())),
    }
}

enum Failure {
    Wrong(String),
    Internal(HttpError),
}

impl From<crate::ops::OpsError> for Failure {
    fn from(e: crate::ops::OpsError) -> Failure {
        Failure::Internal(HttpError::from(e))
    }
}

async fn by_token(state: &AppState, token: &str) -> Result<Actor, Failure> {
    let Some((tok, user)) = state.ops.token_holder(token).await? else {
        return Err(Failure::Wrong(WRONG.into()));
    };
    if tok.expires_at.is_some_and(|e| e <= kura_db::now()) {
        return Err(Failure::Wrong(format!(
            "this token (id {}) expired; create a new one",
            tok.id
        )));
    }
    Ok(Actor {
        user,
        scope: Some(tok.scope),
        token_expires_at: tok.expires_at,
    })
}

async fn by_password(state: &AppState, name: &str, password: String) -> Result<Actor, Failure> {
    let user = state.ops.user_for_sign_in(name).await?;
    // With a directory, names Kura does not know may be directory users signing in first.
    if state.ops.directory().is_some() && user.as_ref().is_none_or(|u| u.directory.is_some()) {
        return by_directory(state, name, password).await;
    }
    let password_copy = if state.ops.directory().is_some() {
        password.clone()
    } else {
        String::new()
    };
    let checked = state
        .passwords
        .check(user.as_ref(), password, || {
            state.metrics.password_verified()
        })
        .await;
    match (checked, user) {
        (Ok(true), Some(user)) => Ok(Actor {
            user,
            scope: None,
            token_expires_at: None,
        }),
        // A local user whose password the directory accepts: two accounts with one name.
        (Ok(false), Some(_)) if state.ops.directory().is_some() => {
            match state.ops.directory_sign_in(name, &password_copy).await {
                Err(e @ crate::ops::OpsError::DirectoryClash(_)) => Err(e.into()),
                _ => Err(Failure::Wrong(WRONG.into())),
            }
        }
        (Ok(_), _) => Err(Failure::Wrong(WRONG.into())),
        (Err(Busy::Saturated), _) => {
            tracing::warn!("sign-in refused: every password verification slot is busy");
            let mut e = HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many sign-ins at once; try again in a moment (a token avoids the wait)",
            )
            .code("busy");
            e.retry_after = Some(1);
            Err(Failure::Internal(e))
        }
        (Err(Busy::Failed(e)), _) => Err(Failure::Internal(HttpError::internal(e))),
    }
}
