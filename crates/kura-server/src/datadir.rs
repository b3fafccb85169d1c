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

/// File systems whose locks SQLite cannot rely on (statfs `f_type`), by name.
const NETWORK_FS: &[(i64, &str)] = &[
    (0x6969, "NFS (EFS is NFS)"),
    (0x6573_5546, "FUSE"),
    (0x517b, "SMB"),
    (0xff53_4d42, "CIFS"),
    (0xfe53_4d42, "SMB2"),
    (0x00c3_6400, "Ceph"),
    (0x0102_1997, "9p"),
    (0x5346_414f, "AFS"),
    (0x6b41_4653, "AFS"),
    (0x0bd0_0bd0, "Lustre"),
    (0x4750_4653, "GPFS"),
];

/// The network file system `path` (or the nearest folder above it that exists) is on, if any.
pub fn network_fs(path: &Path) -> Option<&'static str> {
    let mut p = absolute(path);
    loop {
        if let Ok(st) = rustix::fs::statfs(&p) {
            #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
            let kind = st.f_type as i64;
            return NETWORK_FS.iter().find(|(m, _)| *m == kind).map(|(_, n)| *n);
        }
        if !p.pop() {
            return None;
        }
    }
}

/// SQLite's locking and WAL are unsafe on network file systems (two writers can corrupt the
/// file), so a SQLite database there is refused unless `allow_sqlite_on_network_fs` says the
/// operator knows better.
pub fn check_sqlite_filesystem(config: &Config) -> Result<(), DataDirError> {
    let Some(file) = kura_db::sqlite_file(&config.database_url()) else {
        return Ok(());
    };
    if config.allow_sqlite_on_network_fs {
        return Ok(());
    }
    let file = absolute(Path::new(&file));
    match network_fs(&file) {
        None => Ok(()),
        Some(kind) => Err(DataDirError(format!(
            "the SQLite database {} is on a network file system ({kind}), where SQLite's locks do not hold and the database can be corrupted: use PostgreSQL (database_url = postgres://...) for a shared folder such as EFS, or put the SQLite file on local disk (database_url = sqlite:///local/path/kura.db); allow_sqlite_on_network_fs = true (KURA_ALLOW_SQLITE_ON_NETWORK_FS) overrides this for a file system you know locks correctly",
            file.display()
        ))),
    }
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
