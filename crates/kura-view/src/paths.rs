//! Paths inside trees: validation, lookups (memoised for history walks) and full-tree walks.

use std::collections::HashMap;
use std::ops::ControlFlow;

use gix::objs::tree::EntryKind as Mode;
use gix::objs::{Find, Kind, TreeRefIter};
use gix::{oid, ObjectId};

use crate::open::git;
use crate::{EntryKind, ViewError};

/// The segments of a `/`-separated path ("" = the root, no segments). A path that could
/// never name a tree entry (`..`, `.`, empty segments, NUL, a leading `/`) is `Invalid`.
pub(crate) fn segments(path: &str) -> Result<Vec<&str>, ViewError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('\0'))
    {
        return Err(ViewError::Invalid(format!(
            "invalid path: {:?}",
            crate::commits::truncate(path)
        )));
    }
    Ok(segments)
}

pub(crate) fn kind(mode: Mode) -> EntryKind {
    match mode {
        Mode::Tree => EntryKind::Dir,
        Mode::Blob => EntryKind::File,
        Mode::BlobExecutable => EntryKind::Exec,
        Mode::Link => EntryKind::Symlink,
        Mode::Commit => EntryKind::Submodule,
    }
}

/// One decoded tree entry, owned so trees can be cached and walked without borrows.
#[derive(Clone)]
pub(crate) struct Entry {
    pub name: Vec<u8>,
    pub mode: Mode,
    pub id: ObjectId,
}

/// The entries of tree `id`, in tree order.
pub(crate) fn read_tree(
    repo: &gix::Repository,
    id: &oid,
    buf: &mut Vec<u8>,
) -> Result<Vec<Entry>, ViewError> {
    let mut entries = Vec::new();
    for_each_entry(repo, id, buf, |name, mode, id| {
        entries.push(Entry {
            name: name.to_vec(),
            mode,
            id: id.to_owned(),
        });
    })?;
    Ok(entries)
}

/// The entry at `segments` below the tree `root` (the root itself for no segments).
pub(crate) fn lookup(
    repo: &gix::Repository,
    root: ObjectId,
    segments: &[&str],
) -> Result<Option<(Mode, ObjectId)>, ViewError> {
    let mut buf = Vec::new();
    let mut current = (Mode::Tree, root);
    for segment in segments {
        if current.0 != Mode::Tree {
            return Ok(None);
        }
        match find_entry(repo, &current.1, segment.as_bytes(), &mut buf)? {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Repeated lookups of one path in many commits' trees. Consecutive commits mostly share
/// subtrees, so each (depth, tree id) is resolved once.
pub(crate) struct PathLookup {
    segments: Vec<Vec<u8>>,
    memo: Vec<HashMap<ObjectId, Option<(Mode, ObjectId)>>>,
    buf: Vec<u8>,
}

impl PathLookup {
    pub(crate) fn new(segments: &[&str]) -> Self {
        PathLookup {
            segments: segments.iter().map(|s| s.as_bytes().to_vec()).collect(),
            memo: segments.iter().map(|_| HashMap::new()).collect(),
            buf: Vec::new(),
        }
    }

    pub(crate) fn get(
        &mut self,
        repo: &gix::Repository,
        root: ObjectId,
    ) -> Result<Option<(Mode, ObjectId)>, ViewError> {
        let mut tree = root;
        let mut found = Some((Mode::Tree, root));
        for depth in 0..self.segments.len() {
            let next = match self.memo[depth].get(&tree) {
                Some(next) => *next,
                None => {
                    let next = find_entry(repo, &tree, &self.segments[depth], &mut self.buf)?;
                    self.memo[depth].insert(tree, next);
                    next
                }
            };
            found = next;
            match next {
                Some((Mode::Tree, id)) => tree = id,
                Some(_) if depth + 1 == self.segments.len() => {}
                _ => return Ok(None),
            }
        }
        Ok(found)
    }
}

/// The entry `name` of tree `id`, decoded lazily: history walks do this once per commit.
fn find_entry(
    repo: &gix::Repository,
    id: &oid,
    name: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Option<(Mode, ObjectId)>, ViewError> {
    let mut found = None;
    for_each_entry(repo, id, buf, |filename, mode, id| {
        if found.is_none() && filename == name {
            found = Some((mode, id.to_owned()));
        }
    })?;
    Ok(found)
}

/// Calls `f` with each entry of tree `id` without allocating per entry.
pub(crate) fn for_each_entry(
    repo: &gix::Repository,
    id: &oid,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(&[u8], Mode, &oid),
) -> Result<(), ViewError> {
    if id == ObjectId::empty_tree(id.kind()) {
        return Ok(());
    }
    let data = repo
        .objects
        .try_find(id, buf)
        .map_err(git)?
        .ok_or_else(|| ViewError::Git(format!("tree {id} is missing")))?;
    if data.kind != Kind::Tree {
        return Err(ViewError::Git(format!("{id} is not a tree")));
    }
    for entry in TreeRefIter::from_bytes(data.data, data.object_hash) {
        let entry = entry.map_err(git)?;
        f(entry.filename, entry.mode.kind(), entry.oid);
    }
    Ok(())
}

/// Visits every non-tree entry below `root` depth-first in tree order, which is also byte order
/// of the full paths. An explicit stack keeps hostile, deeply nested trees from overflowing.
pub(crate) fn walk(
    repo: &gix::Repository,
    root: ObjectId,
    mut visit: impl FnMut(&[u8], &Entry) -> Result<ControlFlow<()>, ViewError>,
) -> Result<(), ViewError> {
    let mut buf = Vec::new();
    let mut path: Vec<u8> = Vec::new();
    // (entries, next index, length of `path` for this tree)
    let mut stack = vec![(read_tree(repo, &root, &mut buf)?, 0usize, 0usize)];
    while let Some((entries, index, base)) = stack.last_mut() {
        let Some(entry) = entries.get(*index).cloned() else {
            stack.pop();
            continue;
        };
        *index += 1;
        let base = *base;
        path.truncate(base);
        if base > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(&entry.name);
        if entry.mode == Mode::Tree {
            let children = read_tree(repo, &entry.id, &mut buf)?;
            stack.push((children, 0, path.len()));
        } else if visit(&path, &entry)?.is_break() {
            return Ok(());
        }
    }
    Ok(())
}
