//! Users, their passwords and tokens, and the credential checks behind authentication.

use std::sync::OnceLock;
use std::time::Duration;

use kura_db::{secrets, DbError, Role, Token, User};

use super::{Ops, OpsError, Result};
use crate::names;

/// The longest token lifetime accepted (far beyond any sane use; keeps the arithmetic safe).
const MAX_TOKEN_LIFETIME: Duration = kura_proto::MAX_DURATION;

/// A hash to verify against when the user does not exist, so timing does not tell.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| secrets::hash_password("kura-dummy-password"))
}

impl Ops {
    /// On an empty database, creates `admin`; returns the password when it was generated.
    pub async fn bootstrap_admin(&self, password: Option<&str>) -> Result<Option<String>> {
        if self.db.user_count().await? > 0 {
            return Ok(None);
        }
        let (pw, generated) = match password {
            Some(p) if !p.is_empty() => (p.to_string(), false),
            _ => (secrets::random_password(), true),
        };
        let hash = hash(pw.clone()).await?;
        match self.db.create_user("admin", &hash, true).await {
            Ok(_) => Ok(generated.then_some(pw)),
            // Another replica won the race: fine.
            Err(DbError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn user(&self, name: &str) -> Result<User> {
        self.db
            .user_by_name(name)
            .await?
            .ok_or_else(|| OpsError::UserNotFound(name.to_string()))
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        Ok(self.db.user_by_id(id).await?)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.db.list_users().await?)
    }

    /// Creates a user; returns the generated password when none was given.
    pub async fn add_user(
        &self,
        name: &str,
        password: Option<String>,
        admin: bool,
    ) -> Result<(User, Option<String>)> {
        names::validate("user", name).map_err(OpsError::Invalid)?;
        // Say that the name is taken before judging the password.
        if self.db.namespace_by_name(name).await?.is_some() {
            return Err(OpsError::Conflict(format!("a user or group named {name}")));
        }
        let (pw, generated) = password_or_random(password)?;
        let hash = hash(pw.clone()).await?;
        let user = self.db.create_user(name, &hash, admin).await?;
        Ok((user, generated.then_some(pw)))
    }

    pub async fn set_password(
        &self,
        name: &str,
        password: Option<String>,
    ) -> Result<Option<String>> {
        let user = self.user(name).await?;
        if user.directory.is_some() {
            return Err(OpsError::ManagedByDirectory(user.name));
        }
        let (pw, generated) = password_or_random(password)?;
        let hash = hash(pw.clone()).await?;
        self.db.set_password(user.id, &hash).await?;
        // A new password signs the user out of every browser.
        self.db.delete_user_sessions(user.id, None).await?;
        Ok(generated.then_some(pw))
    }

    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        let user = self.user(name).await?;
        if !disabled && user.directory.as_ref().is_some_and(|d| d.disabled) {
            return Err(OpsError::Invalid(format!(
                "{} is disabled in the company directory: enable it there, then run `kura ldap sync` (or wait for the next sync)",
                user.name
            )));
        }
        self.db.set_disabled(user.id, disabled).await?;
        if disabled {
            self.db.delete_user_sessions(user.id, None).await?;
        }
        Ok(user)
    }

    /// Returns the token (to show once) and its record.
    pub async fn create_token(
        &self,
        user: &str,
        scope: Role,
        expires_in: Option<Duration>,
        name: Option<&str>,
    ) -> Result<(String, Token)> {
        let user = self.user(user).await?;
        let expires_at = match expires_in {
            Some(d) if d.is_zero() || d > MAX_TOKEN_LIFETIME => {
                return Err(OpsError::InvalidExpiry)
            }
            Some(d) => Some(kura_db::now() + d.as_secs().max(1) as i64),
            None => None,
        };
        let (token, hash) = secrets::new_token();
        let rec = self
            .db
            .create_token(user.id, name.unwrap_or("token"), &hash, scope, expires_at)
            .await?;
        Ok((token, rec))
    }

    pub async fn list_tokens(&self, user: &str) -> Result<Vec<Token>> {
        let user = self.user(user).await?;
        Ok(self.db.list_tokens(user.id).await?)
    }

    pub async fn token(&self, id: i64) -> Result<Token> {
        self.db
            .token_by_id(id)
            .await?
            .ok_or(OpsError::TokenNotFound(id))
    }

    pub async fn revoke_token(&self, id: i64) -> Result<()> {
        if !self.db.delete_token(id).await? {
            return Err(OpsError::TokenNotFound(id));
        }
        Ok(())
    }

    /// The token and its holder, if the secret is a known token; records its use (at most one
    /// write a minute, so clones do not write on every request).
    pub async fn token_holder(&self, secret: &str) -> Result<Option<(Token, User)>> {
        let Some((tok, user)) = self.db.token_by_hash(&secrets::token_hash(secret)).await? else {
            return Ok(None);
        };
        let now = kura_db::now();
        if tok.last_used_at.is_none_or(|t| now - t >= 60) {
            if let Err(e) = self.db.touch_token(tok.id, now).await {
                tracing::warn!(error = %e, "could not record token use");
            }
        }
        Ok(Some((tok, user)))
    }

    /// The user signing in with a password, if the name exists.
    pub async fn user_for_sign_in(&self, name: &str) -> Result<Option<User>> {
        Ok(self.db.user_by_name(name).await?)
    }
}

/// Verifies a password with argon2id in `memory` (about 19 MiB and tens of milliseconds of one
/// core: call it off the async threads and bounded). `hash` is `None` for an unknown user,
/// which is checked against a dummy hash so that timing does not tell.
pub fn verify_password(
    hash: Option<&str>,
    password: &str,
    memory: &mut secrets::ArgonMemory,
) -> bool {
    let ok = secrets::verify_password_in(hash.unwrap_or_else(|| dummy_hash()), password, memory);
    ok && hash.is_some()
}

fn password_or_random(password: Option<String>) -> Result<(String, bool)> {
    match password {
        Some(p) if p.chars().count() < 8 => Err(OpsError::WeakPassword),
        Some(p) => Ok((p, false)),
        None => Ok((secrets::random_password(), true)),
    }
}

async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| OpsError::Internal(format!("password hashing failed: {e}")))
}
