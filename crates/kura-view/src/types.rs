//! The values the pages render. Plain data: no gix types.

use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// A revision, path or object that does not exist (the page answers 404).
    #[error("{0} not found")]
    NotFound(String),
    /// Input that cannot name anything (bad id, `..` in a path): 400.
    #[error("{0}")]
    Invalid(String),
    /// Over a size bound; the message says which.
    #[error("{0}")]
    TooLarge(String),
    /// The repository could not be read (corrupt, I/O): 500, logged.
    #[error("reading the repository failed: {0}")]
    Git(String),
}

/// Bounds on history walks.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_commits: usize,
    pub deadline: Instant,
}

#[derive(Debug, Clone)]
pub struct DiffLimits {
    /// Files beyond this are listed with counts only when cheap, else omitted (`truncated`).
    pub max_files: usize,
    /// Total diff lines (context included) across all files.
    pub max_lines: usize,
    /// A blob larger than this is not diffed (marked `too_large`).
    pub max_blob_bytes: u64,
    pub deadline: Instant,
}

#[derive(Debug, Clone)]
pub struct SearchLimits {
    pub max_matches: usize,
    pub max_files: usize,
    pub max_file_bytes: u64,
    pub deadline: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub title: String,
    pub author_name: String,
    pub author_email: String,
    /// Unix seconds.
    pub author_time: i64,
    pub committer_time: i64,
}

#[derive(Debug, Clone)]
pub struct CommitDetail {
    pub info: CommitInfo,
    /// The whole message (title included).
    pub message: String,
    pub committer_name: String,
    pub committer_email: String,
    pub parents: Vec<String>,
    pub tree: String,
}

#[derive(Debug, Clone)]
pub struct RefInfo {
    /// Short name: `main`, `release/1.0`, `v1.0`.
    pub name: String,
    pub commit: CommitInfo,
}

#[derive(Debug, Clone, Default)]
pub struct Refs {
    pub branches: Vec<RefInfo>,
    pub tags: Vec<RefInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevKind {
    Branch,
    Tag,
    Commit,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    /// As written in URLs: the short ref name, or the commit id.
    pub name: String,
    pub kind: RevKind,
    /// The commit (tags peeled).
    pub commit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// Executable file.
    Exec,
    Symlink,
    /// A gitlink (submodule commit).
    Submodule,
}

#[derive(Debug, Clone)]
pub struct TreeEntry {
    pub name: String,
    pub kind: EntryKind,
    pub id: String,
    /// Blob size in bytes (files and symlinks only).
    pub size: Option<u64>,
    pub last_commit: Option<CommitInfo>,
}

#[derive(Debug, Clone)]
pub struct Blob {
    pub id: String,
    pub size: u64,
    /// At most the requested number of bytes.
    pub data: Vec<u8>,
    /// `data` is shorter than the blob.
    pub truncated: bool,
    /// A NUL byte in the first 8 000 bytes (git's rule).
    pub binary: bool,
}

#[derive(Debug, Clone)]
pub struct LogPage {
    pub commits: Vec<CommitInfo>,
    /// More commits follow (the next page exists).
    pub has_more: bool,
    /// The walk stopped at its bound before filling the page (path logs on long histories).
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Added,
    Deleted,
    Modified,
    Renamed,
    Copied,
    TypeChanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
}

#[derive(Debug, Clone)]
pub struct DiffLine {
    pub kind: LineKind,
    pub old_no: Option<u32>,
    pub new_no: Option<u32>,
    /// Without the trailing newline; invalid UTF-8 replaced.
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Hunk {
    /// `@@ -a,b +c,d @@`
    pub header: String,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, Clone)]
pub struct FileDiff {
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub status: FileStatus,
    pub binary: bool,
    pub too_large: bool,
    pub added: u32,
    pub removed: u32,
    pub hunks: Vec<Hunk>,
    /// Hunks were cut at the line bound.
    pub truncated: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub files: Vec<FileDiff>,
    /// Files or lines were left out at a bound.
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub struct BlameHunk {
    pub commit: CommitInfo,
    /// 1-based first line in the file at the blamed commit.
    pub start_line: u32,
    pub lines: u32,
}

#[derive(Debug, Clone)]
pub struct LineMatch {
    pub line_no: u32,
    /// The line (cut to 500 characters around the first match).
    pub text: String,
    /// Byte ranges of matches within `text`.
    pub ranges: Vec<(usize, usize)>,
}

#[derive(Debug, Clone)]
pub struct FileMatch {
    pub path: String,
    pub lines: Vec<LineMatch>,
}

#[derive(Debug, Clone, Default)]
pub struct SearchResult {
    pub files: Vec<FileMatch>,
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    TarGz,
    Zip,
}
