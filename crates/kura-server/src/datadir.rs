//! The data folder, found reliably: commands other than `serve` never create one (a command run
//! from the wrong folder must not quietly start an empty Kura), and one `serve` at a time holds
//! a SQLite data folder.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::Config;

/// In the data folder: locked by the `kura serve` that uses it with SQLite; holds its pid.
const LOCK_FILE: &str = "serve.lock";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataDirError(String);

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn where_to_point() -> String {
    "run it in the folder `kura serve` was started in, or point at the server's data folder with --data-dir DIR, KURA_DATA_DIR=DIR or --config FILE (a kura.toml with data_dir); only `kura serve` creates a data folder".into()
}

/// Before a command other than `serve` opens the database: a SQLite file must exist already.
pub fn check_database(config: &Config) -> Result<(), DataDirError> {
    let Some(file) = kura_db::sqlite_file(&config.database_url()) else {
        return Ok(());
    };
    if Path::new(&file).is_file() {
        return Ok(());
    }
    let file = absolute(Path::new(&file));
    Err(DataDirError(if !config.data_dir.is_dir() {
        format!(
            "no Kura data folder at {} (looked for {}): {}",
            absolute(&config.data_dir).display(),
            file.display(),
            where_to_point()
        )
    } else {
        format!(
            "no Kura database at {}: {}",
            file.display(),
            where_to_point()
        )
    }))
}

/// After the database answered (PostgreSQL keeps no file here): the repositories' folder too.
pub fn check_folder(config: &Config) -> Result<(), DataDirError> {
    if config.data_dir.is_dir() {
        return Ok(());
    }
    Err(DataDirError(format!(
        "no Kura data folder at {} (the repositories live there): {}",
        absolute(&config.data_dir).display(),
        where_to_point()
    )))
}

/// Held for as long as `kura serve` runs.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
}

/// With SQLite, one `kura serve` per data folder: a second one (another port, another shell)
/// would share the database file without knowing. PostgreSQL replicas share a folder on
/// purpose, so there is no lock then. The lock is the kernel's (`flock`): it goes with the
/// process, even after `kill -9`.
pub fn lock_for_serve(config: &Config) -> Result<Option<ServeLock>, DataDirError> {
    if kura_db::sqlite_file(&config.database_url()).is_none() {
        return Ok(None);
    }
    let dir = &config.data_dir;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    .map_err(|e| {
        DataDirError(format!(
            "cannot create the data folder {}: {e}",
            absolute(dir).display()
        ))
    })?;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| DataDirError(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let pid = holder
                .trim()
                .strip_prefix("pid ")
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            return Err(DataDirError(format!(
                "another kura serve{pid} already uses the data folder {} with SQLite: stop it first, or give this one a data folder of its own (--data-dir); several servers on one data folder need PostgreSQL (database_url)",
                absolute(dir).display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(DataDirError(format!("cannot lock {}: {e}", path.display())))
        }
    }
    let note = format!("pid {}\n", std::process::id());
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(note.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot note the pid in the data folder's lock file");
    }
    Ok(Some(ServeLock { _file: file }))
}
