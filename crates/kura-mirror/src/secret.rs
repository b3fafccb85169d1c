//! Encryption at rest for mirror passwords: ChaCha20-Poly1305 with a server key from
//! `KURA_SECRET_KEY` (any string, hashed to 32 bytes) or `<data_dir>/secret.key` (32 random bytes,
//! created 0600 on first use). Stored form: base64(nonce || ciphertext).

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use crate::MirrorError;

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_passphrase(passphrase: &str) -> SecretBox {
        let key = Sha256::digest(passphrase.as_bytes());
        SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// `KURA_SECRET_KEY` when given, else the key file in the data folder (created if missing).
    pub fn load(passphrase: Option<&str>, data_dir: &Path) -> Result<SecretBox, MirrorError> {
        if let Some(p) = passphrase.filter(|p| !p.is_empty()) {
            return Ok(SecretBox::from_passphrase(p));
        }
        let path = data_dir.join("secret.key");
        let key: Vec<u8> = match std::fs::read(&path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => {
                return Err(MirrorError::Secret(format!(
                    "{} is not a 32-byte key; restore it from backup (mirror passwords need it)",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng).to_vec();
                match write_private(&path, &key) {
                    Ok(()) => key,
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(&path)
                        .ok()
                        .filter(|k| k.len() == 32)
                        .ok_or_else(|| {
                            MirrorError::Secret(format!("cannot read {}", path.display()))
                        })?,
                    Err(e) => {
                        return Err(MirrorError::Secret(format!(
                            "cannot create {}: {e}",
                            path.display()
                        )))
                    }
                }
            }
            Err(e) => {
                return Err(MirrorError::Secret(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    pub fn seal(&self, plain: &str) -> Result<String, MirrorError> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, plain.as_bytes())
            .map_err(|_| MirrorError::Secret("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, MirrorError> {
        let wrong = || {
            MirrorError::Secret(
                "cannot decrypt a stored mirror password: the server key changed (KURA_SECRET_KEY or secret.key); set the old key back or re-add the mirror".into(),
            )
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| wrong())?;
        if raw.len() < 12 {
            return Err(wrong());
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map_err(|_| wrong())
    }
}

/// Written whole to a private temporary file, then linked into place: a concurrent reader sees
/// no file or the whole key, never a part; a concurrent creator gets `AlreadyExists`.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", kura_git::unique_suffix()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        let dir = std::env::temp_dir().join(format!("kura-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let b = SecretBox::load(None, &dir).unwrap();
        let sealed = b.seal("hunter2").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            SecretBox::load(None, &dir).unwrap().open(&sealed).unwrap(),
            "hunter2"
        );
        assert!(SecretBox::from_passphrase("other").open(&sealed).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
