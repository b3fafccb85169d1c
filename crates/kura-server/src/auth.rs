//! Authentication: HTTP Basic with a password (argon2id, verified off the async threads) or a
//! token as the password, `Bearer` tokens for the API, and failure throttling.

use std::net::IpAddr;
use std::sync::OnceLock;

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use kura_db::secrets;

use crate::app::AppState;
use crate::error::HttpError;
use crate::ops::Actor;

/// Who is making the request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    User(Actor),
}

enum Credentials {
    None,
    Basic { user: String, secret: String },
    Bearer(String),
}

fn credentials(headers: &HeaderMap) -> Result<Credentials, HttpError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let malformed = || {
        HttpError::unauthorized(
            "the Authorization header is malformed: use Basic (user name and password or token) or Bearer TOKEN",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(malformed)?;
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| malformed())?;
        let raw = String::from_utf8(raw).map_err(|_| malformed())?;
        let (user, secret) = raw.split_once(':').ok_or_else(malformed)?;
        Ok(Credentials::Basic {
            user: user.to_string(),
            secret: secret.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(rest.trim().to_string()))
    } else {
        Err(malformed())
    }
}

/// A hash to verify against when the user does not exist, so timing does not tell.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| secrets::hash_password("kura-dummy-password"))
}

const WRONG: &str =
    "wrong user name or password (or token); check them, or ask an administrator to reset them";

/// Authenticates the request. Requests without credentials are anonymous and never count as
/// failures (git always asks once without them to get the challenge).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Caller, HttpError> {
    let creds = credentials(headers)?;
    let (secret, basic_user) = match creds {
        Credentials::None => return Ok(Caller::Anonymous),
        Credentials::Basic { user, secret } => (secret, Some(user)),
        Credentials::Bearer(t) => (t, None),
    };
    let is_token = basic_user.is_none() || secret.starts_with(secrets::TOKEN_PREFIX);
    // Tokens are too long to guess: count their failures per address only, so that wrong
    // passwords for a user never lock out that user's automation (and one shared key for every
    // Bearer request cannot lock out all of them).
    let mut keys = vec![format!("ip:{ip}")];
    if let (false, Some(u)) = (is_token, &basic_user) {
        keys.push(format!("user:{}", u.to_lowercase()));
    }
    if let Some(wait) = state.throttle.retry_after(&keys) {
        let secs = wait.as_secs().max(1);
        tracing::warn!(client = %ip, "sign-in throttled");
        let mut e = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed sign-ins from this address or for this user; wait {secs} seconds and try again"),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    let result = if is_token {
        by_token(state, &secret).await
    } else {
        by_password(state, basic_user.as_deref().unwrap_or(""), secret).await
    };
    match result {
        Ok(actor) if actor.user.disabled => Err(HttpError::forbidden(format!(
            "the account {} is disabled; ask an administrator to enable it",
            actor.user.name
        ))),
        Ok(actor) => Ok(Caller::User(actor)),
        Err(Failure::Wrong(msg)) => {
            state.throttle.record_failure(&keys);
            tracing::info!(client = %ip, "failed sign-in");
            Err(HttpError::unauthorized(msg))
        }
        Err(Failure::Internal(e)) => Err(e),
    }
}

enum Failure {
    Wrong(String),
    Internal(HttpError),
}

impl From<kura_db::DbError> for Failure {
    fn from(e: kura_db::DbError) -> Failure {
        Failure::Internal(HttpError::from(e))
    }
}

async fn by_token(state: &AppState, token: &str) -> Result<Actor, Failure> {
    let hash = secrets::token_hash(token);
    let Some((tok, user)) = state.ops.db.token_by_hash(&hash).await? else {
        return Err(Failure::Wrong(WRONG.into()));
    };
    let now = kura_db::now();
    if tok.expires_at.is_some_and(|e| e <= now) {
        return Err(Failure::Wrong(format!(
            "this token (id {}) expired; create a new one with kura token create",
            tok.id
        )));
    }
    // At most one write a minute per token keeps clones from writing on every request.
    if tok.last_used_at.is_none_or(|t| now - t >= 60) {
        if let Err(e) = state.ops.db.touch_token(tok.id, now).await {
            tracing::warn!(error = %e, "could not record token use");
        }
    }
    Ok(Actor {
        user,
        scope: Some(tok.scope),
        token_expires_at: tok.expires_at,
    })
}

async fn by_password(state: &AppState, name: &str, password: String) -> Result<Actor, Failure> {
    let user = state.ops.db.user_by_name(name).await?;
    if let Some(u) = user.as_ref().filter(|u| u.disabled) {
        // Refused before the password is checked, so a disabled account confirms no guess.
        return Err(Failure::Wrong(format!(
            "the account {} is disabled; ask an administrator to enable it",
            u.name
        )));
    }
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let ok = tokio::task::spawn_blocking(move || secrets::verify_password(&hash, &password))
        .await
        .map_err(|e| Failure::Internal(HttpError::internal(e)))?;
    match user {
        Some(user) if ok => Ok(Actor {
            user,
            scope: None,
            token_expires_at: None,
        }),
        _ => Err(Failure::Wrong(WRONG.into())),
    }
}
