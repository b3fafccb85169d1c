//! Password hashing (argon2id) and token generation/hashing. The argon2 calls are CPU-heavy and
//! synchronous: async callers run them in `spawn_blocking`.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

/// Token prefix: lets the server tell a token from a password and scanners spot leaked ones.
pub const TOKEN_PREFIX: &str = "kura_";

/// argon2id with m=19 MiB, t=2, p=1 (the crate's defaults, OWASP's recommendation).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Only fails for out-of-range parameters, which are constants here.
        .unwrap_or_default()
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random password for accounts created without one.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 20)
}

/// A new token (shown once) and the hash to store.
pub fn new_token() -> (String, String) {
    let token = format!(
        "{TOKEN_PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
    );
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_use_argon2id_params() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn tokens_are_prefixed_and_hashed() {
        let (t, h) = new_token();
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == 37);
        assert_eq!(h, token_hash(&t));
        assert_ne!(h, t);
    }
}
