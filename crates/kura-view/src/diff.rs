//! Commit diffs: tree-to-tree changes with rename tracking, then per-file unified hunks.

use std::ops::ControlFlow;
use std::time::Instant;

use gix::bstr::ByteSlice;
use gix::diff::blob::{sources::byte_lines, Algorithm, InternedInput};
use gix::diff::tree_with_rewrites::{ChangeRef, Options};
use gix::objs::tree::EntryKind as Mode;
use gix::objs::{Find, Kind, TreeRefIter};
use gix::ObjectId;

use crate::commits;
use crate::open::git;
use crate::tree::{is_binary, read_blob, size_of};
use crate::{Diff, DiffLimits, DiffLine, FileDiff, FileStatus, Hunk, LineKind, ViewError};

/// Lines of context around each change, as git's default.
const CONTEXT: u32 = 3;

/// A blob-diff platform for rename similarity (and blame). Attributes come from an empty
/// index: nothing is read from the trees' `.gitattributes` and no text conversion runs,
/// which also spares building an index of HEAD on every call.
pub(crate) fn resource_cache(
    repo: &gix::Repository,
) -> Result<gix::diff::blob::Platform, ViewError> {
    let index = gix::index::State::new(repo.object_hash());
    let attributes = repo
        .attributes_only(
            &index,
            gix::worktree::stack::state::attributes::Source::IdMapping,
        )
        .map_err(git)?
        .detach();
    gix::diff::resource_cache(
        repo,
        gix::diff::blob::pipeline::Mode::ToGit,
        attributes,
        Default::default(),
    )
    .map_err(git)
}

struct Side {
    path: String,
    mode: Mode,
    id: ObjectId,
}

struct Change {
    status: FileStatus,
    old: Option<Side>,
    new: Option<Side>,
}

impl Change {
    fn key(&self) -> &str {
        self.new
            .as_ref()
            .or(self.old.as_ref())
            .map_or("", |side| side.path.as_str())
    }
}

fn side(location: &gix::bstr::BStr, mode: gix::objs::tree::EntryMode, id: ObjectId) -> Side {
    Side {
        path: location.to_str_lossy().into_owned(),
        mode: mode.kind(),
        id,
    }
}

/// The raw bytes of tree `id` (the empty tree need not exist in the object database).
fn tree_bytes(repo: &gix::Repository, id: ObjectId) -> Result<Vec<u8>, ViewError> {
    if id == ObjectId::empty_tree(repo.object_hash()) {
        return Ok(Vec::new());
    }
    let mut buf = Vec::new();
    let data = repo
        .objects
        .try_find(&id, &mut buf)
        .map_err(git)?
        .ok_or_else(|| ViewError::Git(format!("tree {id} is missing")))?;
    if data.kind != Kind::Tree {
        return Err(ViewError::Git(format!("{id} is not a tree")));
    }
    Ok(data.data.to_vec())
}

fn changes(repo: &gix::Repository, old: ObjectId, new: ObjectId) -> Result<Vec<Change>, ViewError> {
    let (old, new) = (tree_bytes(repo, old)?, tree_bytes(repo, new)?);
    let hash = repo.object_hash();
    let mut cache = resource_cache(repo)?;
    let mut out = Vec::new();
    let options = Options {
        location: Some(gix::diff::tree::recorder::Location::Path),
        rewrites: Some(gix::diff::Rewrites::default()),
    };
    gix::diff::tree_with_rewrites(
        TreeRefIter::from_bytes(&old, hash),
        TreeRefIter::from_bytes(&new, hash),
        &mut cache,
        &mut gix::diff::tree::State::default(),
        &repo.objects,
        |change| -> gix::Result<ControlFlow<()>> {
            if let Some(change) = convert(change) {
                out.push(change);
            }
            Ok(ControlFlow::Continue(()))
        },
        options,
    )
    .map_err(git)?;
    out.sort_by(|a, b| a.key().cmp(b.key()));
    Ok(out)
}

/// Files only: directories show up through their files (inferred directory renames too).
fn convert(change: ChangeRef<'_>) -> Option<Change> {
    Some(match change {
        ChangeRef::Addition {
            location,
            entry_mode,
            id,
            ..
        } => {
            if entry_mode.is_tree() {
                return None;
            }
            Change {
                status: FileStatus::Added,
                old: None,
                new: Some(side(location, entry_mode, id)),
            }
        }
        ChangeRef::Deletion {
            location,
            entry_mode,
            id,
            ..
        } => {
            if entry_mode.is_tree() {
                return None;
            }
            Change {
                status: FileStatus::Deleted,
                old: Some(side(location, entry_mode, id)),
                new: None,
            }
        }
        ChangeRef::Modification {
            location,
            previous_entry_mode,
            previous_id,
            entry_mode,
            id,
        } => {
            let old = side(location, previous_entry_mode, previous_id);
            let new = side(location, entry_mode, id);
            match (old.mode == Mode::Tree, new.mode == Mode::Tree) {
                (true, true) => return None,
                (true, false) => Change {
                    status: FileStatus::Added,
                    old: None,
                    new: Some(new),
                },
                (false, true) => Change {
                    status: FileStatus::Deleted,
                    old: Some(old),
                    new: None,
                },
                (false, false) => {
                    let file = |m: Mode| matches!(m, Mode::Blob | Mode::BlobExecutable);
                    let status = if old.mode == new.mode || (file(old.mode) && file(new.mode)) {
                        FileStatus::Modified
                    } else {
                        FileStatus::TypeChanged
                    };
                    Change {
                        status,
                        old: Some(old),
                        new: Some(new),
                    }
                }
            }
        }
        ChangeRef::Rewrite {
            source_location,
            source_entry_mode,
            source_id,
            entry_mode,
            id,
            location,
            copy,
            ..
        } => {
            if entry_mode.is_tree() || source_entry_mode.is_tree() {
                return None;
            }
            Change {
                status: if copy {
                    FileStatus::Copied
                } else {
                    FileStatus::Renamed
                },
                old: Some(side(source_location, source_entry_mode, source_id)),
                new: Some(side(location, entry_mode, id)),
            }
        }
    })
}

enum Content {
    Text(Vec<u8>),
    TooLarge,
}

fn content(repo: &gix::Repository, side: Option<&Side>, max: u64) -> Result<Content, ViewError> {
    let Some(side) = side else {
        return Ok(Content::Text(Vec::new()));
    };
    match side.mode {
        // As git shows a submodule change.
        Mode::Commit => Ok(Content::Text(
            format!("Subproject commit {}\n", side.id).into_bytes(),
        )),
        Mode::Tree => Ok(Content::Text(Vec::new())),
        Mode::Blob | Mode::BlobExecutable | Mode::Link => {
            if size_of(repo, side.id)?.1 > max {
                return Ok(Content::TooLarge);
            }
            Ok(Content::Text(read_blob(repo, side.id)?))
        }
    }
}

pub(crate) fn diff(
    repo: &gix::Repository,
    old: Option<&str>,
    new: &str,
    limits: &DiffLimits,
) -> Result<Diff, ViewError> {
    let new = commits::tree_of(repo, &commits::parse_id(new)?)?;
    let old = match old {
        Some(old) => commits::tree_of(repo, &commits::parse_id(old)?)?,
        None => ObjectId::empty_tree(repo.object_hash()),
    };
    let mut changes = changes(repo, old, new)?;
    let mut out = Diff::default();
    if changes.len() > limits.max_files {
        changes.truncate(limits.max_files);
        out.truncated = true;
    }
    let mut lines_left = limits.max_lines;
    let mut out_of_lines = false;
    for change in changes {
        let mut file = FileDiff {
            old_path: change.old.as_ref().map(|s| s.path.clone()),
            new_path: change.new.as_ref().map(|s| s.path.clone()),
            status: change.status,
            binary: false,
            too_large: false,
            added: 0,
            removed: 0,
            hunks: Vec::new(),
            truncated: false,
        };
        let same = matches!((&change.old, &change.new), (Some(a), Some(b)) if a.id == b.id);
        if same {
            out.files.push(file); // a pure rename or mode change: nothing to show
            continue;
        }
        if Instant::now() >= limits.deadline {
            file.truncated = true;
            out.truncated = true;
            out.files.push(file);
            continue;
        }
        let before = content(repo, change.old.as_ref(), limits.max_blob_bytes)?;
        let after = content(repo, change.new.as_ref(), limits.max_blob_bytes)?;
        let (Content::Text(before), Content::Text(after)) = (before, after) else {
            file.too_large = true;
            out.files.push(file);
            continue;
        };
        if is_binary(&before) || is_binary(&after) {
            file.binary = true;
            out.files.push(file);
            continue;
        }
        let (hunks, added, removed) = unified(&before, &after);
        file.added = added;
        file.removed = removed;
        for hunk in hunks {
            if out_of_lines || hunk.lines.len() > lines_left {
                out_of_lines = true;
                file.truncated = true;
                out.truncated = true;
                break;
            }
            lines_left -= hunk.lines.len();
            file.hunks.push(hunk);
        }
        out.files.push(file);
    }
    Ok(out)
}

/// Unified hunks with `CONTEXT` lines around changes, merged like git when the context
/// between two changes would touch; plus the added and removed line counts.
pub(crate) fn unified(before: &[u8], after: &[u8]) -> (Vec<Hunk>, u32, u32) {
    let input = InternedInput::new(byte_lines(before), byte_lines(after));
    let mut diff = gix::diff::blob::Diff::compute(Algorithm::Myers, &input);
    diff.postprocess_lines(&input); // git's indent heuristic
    let changes: Vec<gix::diff::blob::Hunk> = diff.hunks().collect();
    let old_lines: Vec<&[u8]> = byte_lines(before).collect();
    let new_lines: Vec<&[u8]> = byte_lines(after).collect();
    // Indices come from the diff of these very lines; `get` only keeps a bug from panicking.
    let text = |lines: &[&[u8]], at: u32| {
        let line = lines.get(at as usize).copied().unwrap_or_default();
        line.strip_suffix(b"\n")
            .unwrap_or(line)
            .to_str_lossy()
            .into_owned()
    };

    let mut hunks = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        let mut j = i;
        while j + 1 < changes.len()
            && changes[j + 1]
                .before
                .start
                .saturating_sub(changes[j].before.end)
                <= 2 * CONTEXT
        {
            j += 1;
        }
        let (first, last) = (&changes[i], &changes[j]);
        let lead = first.before.start.min(CONTEXT);
        let trail = (old_lines.len() as u32)
            .saturating_sub(last.before.end)
            .min(CONTEXT);
        let (old_start, new_start) = (first.before.start - lead, first.after.start - lead);
        let (old_end, new_end) = (last.before.end + trail, last.after.end + trail);

        let mut lines = Vec::new();
        let (mut o, mut n) = (old_start, new_start);
        for change in &changes[i..=j] {
            while o < change.before.start {
                lines.push(DiffLine {
                    kind: LineKind::Context,
                    old_no: Some(o + 1),
                    new_no: Some(n + 1),
                    text: text(&old_lines, o),
                });
                o += 1;
                n += 1;
            }
            for k in change.before.clone() {
                lines.push(DiffLine {
                    kind: LineKind::Removed,
                    old_no: Some(k + 1),
                    new_no: None,
                    text: text(&old_lines, k),
                });
            }
            for k in change.after.clone() {
                lines.push(DiffLine {
                    kind: LineKind::Added,
                    old_no: None,
                    new_no: Some(k + 1),
                    text: text(&new_lines, k),
                });
            }
            o = change.before.end;
            n = change.after.end;
        }
        while o < old_end {
            lines.push(DiffLine {
                kind: LineKind::Context,
                old_no: Some(o + 1),
                new_no: Some(n + 1),
                text: text(&old_lines, o),
            });
            o += 1;
            n += 1;
        }
        let header = format!(
            "@@ -{} +{} @@",
            range(old_start, old_end - old_start),
            range(new_start, new_end - new_start)
        );
        hunks.push(Hunk { header, lines });
        i = j + 1;
    }
    (hunks, diff.count_additions(), diff.count_removals())
}

/// One side of a hunk header as git writes it: the count is left out when it is 1, and an
/// empty side names the line before it.
fn range(start: u32, count: u32) -> String {
    match count {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{count}", start + 1),
    }
}
