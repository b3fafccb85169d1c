//! Opening repositories and the thread-local handles every call works on.

use std::path::Path;

use crate::ViewError;

/// Decoded objects kept per call (walks look the same commits and trees up repeatedly); small,
/// since every reading thread has its own and the memory outlives the call in the allocator.
const OBJECT_CACHE_BYTES: usize = 4 * 1024 * 1024;

pub(crate) fn open(git_dir: &Path) -> Result<gix::ThreadSafeRepository, ViewError> {
    if !git_dir.is_dir() {
        return Err(ViewError::NotFound(git_dir.display().to_string()));
    }
    // Isolated: no system/global/user config, no environment overrides; the path is the git dir.
    let options = gix::open::Options::isolated().open_path_as_is(true);
    let repo = gix::open_opts(git_dir, options).map_err(git)?;
    Ok(repo.into_sync())
}

pub(crate) fn local(repo: &gix::ThreadSafeRepository) -> gix::Repository {
    let mut repo = repo.to_thread_local();
    repo.object_cache_size_if_unset(OBJECT_CACHE_BYTES);
    repo
}

/// A failure reading the repository (corruption, I/O), as opposed to bad or unknown input.
pub(crate) fn git(err: impl std::fmt::Display) -> ViewError {
    ViewError::Git(err.to_string())
}
