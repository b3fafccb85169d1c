//! Password hashing (argon2id) and token generation/hashing. The argon2 calls are CPU-heavy and
//! synchronous: async callers run them in `spawn_blocking`.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
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

/// Working memory for `verify_password_in`: kept by the caller and reused, so that repeated
/// verifications do not each allocate (and, with glibc, often keep) about 19 MiB.
#[derive(Default)]
pub struct ArgonMemory(Vec<argon2::Block>);

/// Verifies `password` against an argon2 PHC string using `memory` for the algorithm's state;
/// the comparison is constant-time.
pub fn verify_password_in(hash: &str, password: &str, memory: &mut ArgonMemory) -> bool {
    use argon2::{Algorithm, Params, Version};
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.0.len() < blocks {
        memory.0.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut memory.0[..blocks],
    );
    computed.is_ok() && argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod pooled_tests {
    use super::*;

    #[test]
    fn pooled_verification_agrees_with_the_crate() {
        let hash = hash_password("correct horse");
        let mut mem = ArgonMemory::default();
        for _ in 0..2 {
            assert!(verify_password_in(&hash, "correct horse", &mut mem));
            assert!(!verify_password_in(&hash, "correct horsE", &mut mem));
        }
        assert!(!verify_password_in("not a hash", "x", &mut mem));
        // other parameters (an older hash) work with the same memory
        let params = argon2::Params::new(8192, 1, 1, None).unwrap();
        let small = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"pw", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify_password_in(&small, "pw", &mut mem));
        assert!(!verify_password_in(&small, "pX", &mut mem));
    }
}

/// A random secret of `len` letters and digits (~5.95 bits each): session cookies, form tokens.
pub fn random_secret(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
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
        let mut mem = ArgonMemory::default();
        assert!(verify_password_in(&h, "correct horse", &mut mem));
        assert!(!verify_password_in(&h, "wrong", &mut mem));
        assert!(!verify_password_in("not a hash", "x", &mut mem));
    }

    #[test]
    fn tokens_are_prefixed_and_hashed() {
        let (t, h) = new_token();
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == 37);
        assert_eq!(h, token_hash(&t));
        assert_ne!(h, t);
    }
}
