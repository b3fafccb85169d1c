//! Reads repositories for the browser pages with gix, isolated from user and system
//! configuration. Everything here is synchronous and bounded (commits walked, bytes read,
//! matches found, a deadline); the server calls it from blocking threads.
//!
//! Ids cross this API as 40-character lower-case hex strings, so callers need no gix types.

mod archive;
mod blame;
mod bloom;
mod commits;
mod diff;
mod log;
mod open;
mod paths;
mod refs;
mod search;
mod tree;
mod types;
pub use types::*;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One opened repository; cheap to share between threads (`Clone` is an `Arc` clone).
#[derive(Clone)]
pub struct Viewer {
    repo: gix::ThreadSafeRepository,
    git_dir: PathBuf,
    /// The commit-graph's changed-path filters, read on first use (`None`: none usable).
    /// Staleness is harmless: a commit's filter never changes, new commits just lack one.
    filters: Arc<OnceLock<Option<bloom::Filters>>>,
}

impl Viewer {
    /// A thread-local handle with an object cache: lookups repeat a lot within one call.
    fn local(&self) -> gix::Repository {
        open::local(&self.repo)
    }

    fn filters(&self) -> Option<&bloom::Filters> {
        self.filters
            .get_or_init(|| bloom::Filters::load(&self.git_dir))
            .as_ref()
    }

    /// The same repository with the Bloom filters ignored, to compare results against.
    #[cfg(test)]
    fn without_filters(&self) -> Viewer {
        Viewer {
            filters: Arc::new(OnceLock::from(None)),
            ..self.clone()
        }
    }

    /// Opens the bare repository at `git_dir`, ignoring system/global/user configuration,
    /// environment overrides and hooks.
    pub fn open(git_dir: &Path) -> Result<Viewer, ViewError> {
        Ok(Viewer {
            repo: open::open(git_dir)?,
            git_dir: git_dir.to_owned(),
            filters: Arc::default(),
        })
    }

    /// True when the repository has no refs at all (nothing pushed yet).
    pub fn is_empty(&self) -> Result<bool, ViewError> {
        refs::is_empty(&self.local())
    }

    /// Branches and tags, each with the commit it points to (tags peeled), sorted: branches by
    /// last commit time, newest first; tags likewise. At most `limit` of each.
    pub fn refs(&self, limit: usize) -> Result<Refs, ViewError> {
        refs::refs(&self.local(), limit)
    }

    /// How many commits `branch` has that `base` lacks (ahead) and the reverse (behind),
    /// walking at most `max_walk` commits; `None` when the bound was hit.
    pub fn ahead_behind(
        &self,
        base: &str,
        branch: &str,
        max_walk: usize,
    ) -> Result<Option<(usize, usize)>, ViewError> {
        refs::ahead_behind(&self.local(), base, branch, max_walk)
    }

    /// Splits `rev_and_path` (as in `/tree/release/1.0/src/lib.rs`) into a revision and a path:
    /// the longest prefix (at `/` boundaries) that names a branch, then a tag, wins; else the
    /// first segment as a full or abbreviated (>= 7 hex) commit id. `NotFound` otherwise.
    pub fn resolve(&self, rev_and_path: &str) -> Result<(Resolved, String), ViewError> {
        refs::resolve(&self.local(), rev_and_path)
    }

    /// The commit a bare revision names (branch, tag, or commit id), as `resolve` with no path.
    pub fn resolve_rev(&self, rev: &str) -> Result<Resolved, ViewError> {
        refs::resolve_rev(&self.local(), rev)
    }

    /// What `path` ("" = root) is in `commit`'s tree: a directory or a file (`NotFound` else).
    pub fn kind_at(&self, commit: &str, path: &str) -> Result<EntryKind, ViewError> {
        tree::kind_at(&self.local(), commit, path)
    }

    /// The entries of the directory `path` ("" = root) in `commit`: directories first, then
    /// by name. With `last_commits`, each entry gets the newest commit (reachable from `commit`)
    /// that changed it, walking at most `limits.max_commits` commits or until the deadline;
    /// entries not found within the bound keep `None`.
    pub fn tree(
        &self,
        commit: &str,
        path: &str,
        last_commits: Option<&Limits>,
    ) -> Result<Vec<TreeEntry>, ViewError> {
        let filters = last_commits.and_then(|_| self.filters());
        tree::tree(&self.local(), filters, commit, path, last_commits)
    }

    /// The file at `path` in `commit`: its id, size, and at most `max_bytes` of its content
    /// (the object's size is read from its header first: a larger blob is not decompressed).
    /// gix cannot inflate a prefix of an object, so a blob over `max_bytes` comes back with empty
    /// `data`, `truncated` set and `binary` false (unknown).
    pub fn blob(&self, commit: &str, path: &str, max_bytes: u64) -> Result<Blob, ViewError> {
        tree::blob(&self.local(), commit, path, max_bytes)
    }

    /// Writes the whole blob `id` to `out` (for raw downloads); `TooLarge` beyond `max_bytes`.
    pub fn write_blob(
        &self,
        id: &str,
        max_bytes: u64,
        out: &mut dyn Write,
    ) -> Result<u64, ViewError> {
        tree::write_blob(&self.local(), id, max_bytes, out)
    }

    /// Commits reachable from `start`, newest first (commit time), skipping `skip`; with
    /// `path`, only commits that changed that file or directory against their first parent
    /// (as `git log -- PATH` with simplification). At most `limit`, bounded by `limits`.
    pub fn log(
        &self,
        start: &str,
        path: Option<&str>,
        skip: usize,
        limit: usize,
        limits: &Limits,
    ) -> Result<LogPage, ViewError> {
        let filters = path.and_then(|_| self.filters());
        log::log(&self.local(), filters, start, path, skip, limit, limits)
    }

    /// One commit with its full message and parents.
    pub fn commit(&self, id: &str) -> Result<CommitDetail, ViewError> {
        log::commit(&self.local(), id)
    }

    /// The changes from `old` (a commit; `None` = empty tree, as for a root commit) to `new`,
    /// with rename detection, per-file unified hunks (3 lines of context) and counts; binary
    /// files are marked, not diffed; stops adding hunks past `limits`, marking `truncated`.
    pub fn diff(
        &self,
        old: Option<&str>,
        new: &str,
        limits: &DiffLimits,
    ) -> Result<Diff, ViewError> {
        diff::diff(&self.local(), old, new, limits)
    }

    /// The best common ancestor of two commits, if any.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, ViewError> {
        log::merge_base(&self.local(), a, b)
    }

    /// Line-by-line origin of `path` at `commit`: consecutive lines from one commit form a hunk.
    /// Past `limits.max_commits` the remaining lines go to the oldest commit reached (as
    /// `git blame --since`); past the deadline it is `TooLarge`. A binary file has no lines.
    pub fn blame(
        &self,
        commit: &str,
        path: &str,
        limits: &Limits,
    ) -> Result<Vec<BlameHunk>, ViewError> {
        blame::blame(&self.local(), commit, path, limits)
    }

    /// Lines containing `query` (case-insensitive literal) in the text files of `commit`'s
    /// tree, like `git grep -i -F`; skips binary files and files over `limits.max_file_bytes`;
    /// stops at `limits.max_matches`, `limits.max_files` or the deadline (`truncated`).
    /// `max_files` counts the files read (symlinks, submodules and oversized files are not).
    pub fn grep(
        &self,
        commit: &str,
        query: &str,
        limits: &SearchLimits,
    ) -> Result<SearchResult, ViewError> {
        search::grep(&self.local(), commit, query, limits)
    }

    /// Paths of files in `commit` whose path contains `query` (case-insensitive), at most
    /// `limit`, shortest first.
    pub fn find_files(
        &self,
        commit: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<String>, ViewError> {
        search::find_files(&self.local(), commit, query, limit)
    }

    /// Writes `commit`'s tree as an archive, every path under `prefix` (e.g. `app-main/`).
    pub fn archive(
        &self,
        commit: &str,
        format: ArchiveFormat,
        prefix: &str,
        out: &mut dyn Write,
    ) -> Result<(), ViewError> {
        archive::archive(&self.local(), commit, format, prefix, out)
    }
}
