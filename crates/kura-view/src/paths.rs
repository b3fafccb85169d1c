//! Paths inside trees: validation, lookups (memoised for history walks) and full-tree walks.

use std::collections::HashMap;
use std::ops::ControlFlow;

use gix::objs::tree::EntryKind as Mode;
use gix::objs::{Find, Kind, TreeRefIter};
use gix::{ObjectId, oid};

use crate::open::git;
use crate::{EntryKind, ViewError};

/// The segments of a `/`-separated path ("" = the root, no segments). A path that could
/// never name a tree entry (`..`, `.`, empty segments, NUL, a leading `/`) is `Invalid`.
pub(crate) fn segments(path: &str) -> Result<Vec<&str>, ViewError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('\0')) {
        return Err(ViewError::Invalid(format!("invalid path: {:?}", crate::commits::truncate(path))));
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
pub(crate) fn read_tree(repo: &gix::Repository, id: &oid, buf: &mut Vec<u8>) -> Result<Vec<Entry>, ViewError> {
    if id == ObjectId::empty_tree(id.kind()) {
        return Ok(Vec::new());
    }
    let data = repo
        .objects
        .try_find(id, buf)
        .map_err(git)?
        .ok_or_else(|| ViewError::Git(format!("tree {id} is missing")))?;
    if data.kind != Kind::Tree {
        return Err(ViewError::Git(format!("{id} is not a tree")));
    }
    TreeRefIter::from_bytes(data.data, data.object_hash)
        .map(|entry| {
            entry.map_err(git).map(|entry| Entry {
                name: entry.filename.to_vec(),
                mode: entry.mode.kind(),
                id: entry.oid.to_owned(),
            })
        })
        .collect()
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
        let entries = read_tree(repo, &current.1, &mut buf)?;
        match entries.into_iter().find(|e| e.name == segment.as_bytes()) {
            Some(entry) => current = (entry.mode, entry.id),
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

    pub(crate) fn get(&mut self, repo: &gix::Repository, root: ObjectId) -> Result<Option<(Mode, ObjectId)>, ViewError> {
        let mut tree = root;
        let mut found = Some((Mode::Tree, root));
        for depth in 0..self.segments.len() {
            let next = match self.memo[depth].get(&tree) {
                Some(next) => *next,
                None => {
                    let entries = read_tree(repo, &tree, &mut self.buf)?;
                    let next = entries
                        .into_iter()
                        .find(|e| e.name == self.segments[depth])
                        .map(|e| (e.mode, e.id));
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
