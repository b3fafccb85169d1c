//! A fingerprint of what a repository advertises: `HEAD`, `packed-refs`, every loose ref, the
//! repository's `config` (object format, `uploadpack.*`) and `shallow`. Two equal
//! fingerprints mean upload-pack answers a request the same way, so the pack cache keys on it.
//! It reads the files as bytes: any change to them, even one that resolves to the same ids,
//! gives a new fingerprint (a needless miss, never a wrong hit).

use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::RepoStore;

impl RepoStore {
    /// Blocking (a directory walk): call it from `spawn_blocking`.
    pub fn refs_state(&self, id: i64) -> io::Result<[u8; 32]> {
        fingerprint(&self.path_of(id))
    }

    /// The bytes of the repository's packs: about what a full clone sends. Blocking.
    pub fn pack_bytes(&self, id: i64) -> io::Result<u64> {
        let mut total = 0;
        for entry in std::fs::read_dir(self.path_of(id).join("objects/pack"))? {
            let entry = entry?;
            if entry.path().extension().is_some_and(|e| e == "pack") {
                total += entry.metadata()?.len();
            }
        }
        Ok(total)
    }
}

pub fn fingerprint(repo: &Path) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    for name in ["HEAD", "config", "packed-refs", "shallow"] {
        add_file(&mut h, repo, Path::new(name))?;
    }
    let mut stack = vec![repo.join("refs")];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // A loose-ref folder emptied and removed by pack-refs while we walk.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if path.extension().is_none_or(|e| e != "lock") {
                if let Ok(rel) = path.strip_prefix(repo) {
                    files.push(rel.to_path_buf());
                }
            }
        }
    }
    files.sort();
    for rel in files {
        add_file(&mut h, repo, &rel)?;
    }
    Ok(h.finalize().into())
}

/// Name, length and bytes; a missing file counts as absent (not as empty).
fn add_file(h: &mut Sha256, repo: &Path, rel: &Path) -> io::Result<()> {
    h.update(rel.as_os_str().as_encoded_bytes());
    h.update([0]);
    match std::fs::read(repo.join(rel)) {
        Ok(bytes) => {
            h.update((bytes.len() as u64 + 1).to_le_bytes());
            h.update(&bytes);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => h.update(0u64.to_le_bytes()),
        Err(e) => return Err(e),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_ref_change_changes_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("kura-refs-state-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("refs/heads")).unwrap();
        std::fs::write(dir.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let empty = fingerprint(&dir).unwrap();
        std::fs::write(dir.join("refs/heads/main"), "1111\n").unwrap();
        let one = fingerprint(&dir).unwrap();
        assert_ne!(empty, one);
        std::fs::write(dir.join("refs/heads/main.lock"), "2222\n").unwrap();
        assert_eq!(fingerprint(&dir).unwrap(), one, "lock files are not refs");
        std::fs::write(dir.join("refs/heads/main"), "2222\n").unwrap();
        let moved = fingerprint(&dir).unwrap();
        assert_ne!(moved, one);
        std::fs::remove_file(dir.join("refs/heads/main")).unwrap();
        std::fs::write(dir.join("packed-refs"), "2222 refs/heads/main\n").unwrap();
        assert_ne!(fingerprint(&dir).unwrap(), moved, "packing is a new state");
        std::fs::write(dir.join("packed-refs"), "").unwrap();
        assert_ne!(fingerprint(&dir).unwrap(), empty, "empty is not absent");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
