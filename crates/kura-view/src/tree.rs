//! Directory listings (with the last commit per entry) and file contents.

use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use gix::objs::tree::EntryKind as Mode;
use gix::objs::Kind;
use gix::ObjectId;

use crate::bloom::Filters;
use crate::commits::{self, Graph, InfoCache};
use crate::open::git;
use crate::paths::{self, Entry, PathLookup};
use crate::{Blob, EntryKind, Limits, TreeEntry, ViewError};

/// Git's rule: a NUL byte in the first 8000 bytes makes a file binary.
pub(crate) fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8000)].contains(&0)
}

/// The entry at `path` in `commit` (the root tree for ""), `NotFound` when absent.
pub(crate) fn entry_at(
    repo: &gix::Repository,
    commit: &str,
    path: &str,
) -> Result<(Mode, ObjectId), ViewError> {
    let segments = paths::segments(path)?;
    let commit = commits::parse_id(commit)?;
    let root = commits::tree_of(repo, &commit)?;
    paths::lookup(repo, root, &segments)?
        .ok_or_else(|| ViewError::NotFound(format!("path {path:?}")))
}

pub(crate) fn kind_at(
    repo: &gix::Repository,
    commit: &str,
    path: &str,
) -> Result<EntryKind, ViewError> {
    Ok(paths::kind(entry_at(repo, commit, path)?.0))
}

/// The object's size from its header (no inflating); `NotFound` when missing.
pub(crate) fn size_of(repo: &gix::Repository, id: ObjectId) -> Result<(Kind, u64), ViewError> {
    let header = repo
        .try_find_header(id)
        .map_err(git)?
        .ok_or_else(|| ViewError::NotFound(format!("object {id}")))?;
    Ok((header.kind(), header.size()))
}

pub(crate) fn tree(
    repo: &gix::Repository,
    filters: Option<&Filters>,
    commit: &str,
    path: &str,
    last_commits: Option<&Limits>,
) -> Result<Vec<TreeEntry>, ViewError> {
    let (mode, dir) = entry_at(repo, commit, path)?;
    if mode != Mode::Tree {
        return Err(ViewError::NotFound(format!("directory {path:?}")));
    }
    let mut entries = paths::read_tree(repo, &dir, &mut Vec::new())?;
    entries.sort_by(|a, b| {
        (b.mode == Mode::Tree)
            .cmp(&(a.mode == Mode::Tree))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut out = Vec::with_capacity(entries.len());
    for entry in &entries {
        let size = match entry.mode {
            Mode::Blob | Mode::BlobExecutable | Mode::Link => Some(size_of(repo, entry.id)?.1),
            Mode::Tree | Mode::Commit => None,
        };
        out.push(TreeEntry {
            name: String::from_utf8_lossy(&entry.name).into_owned(),
            kind: paths::kind(entry.mode),
            id: commits::hex(&entry.id),
            size,
            last_commit: None,
        });
    }
    if let Some(limits) = last_commits {
        let found = last_commits_of(
            repo,
            filters,
            commits::parse_id(commit)?,
            &paths::segments(path)?,
            &entries,
            limits,
        )?;
        for (index, info) in found {
            if let Some(entry) = out.get_mut(index) {
                entry.last_commit = Some(info);
            }
        }
    }
    Ok(out)
}

/// For each entry of the directory at `segments`, the newest commit that made it what it is
/// now: walking newest first, a commit is credited with an entry when it has the entry's
/// current id and none of its parents has (so a merge is credited only for what it resolved
/// itself, and side-branch versions that did not survive are never credited).
fn last_commits_of(
    repo: &gix::Repository,
    filters: Option<&Filters>,
    start: ObjectId,
    segments: &[&str],
    entries: &[Entry],
    limits: &Limits,
) -> Result<Vec<(usize, crate::CommitInfo)>, ViewError> {
    let mut pending: Vec<usize> = (0..entries.len()).collect();
    let mut found = Vec::new();
    let mut graph = Graph::new(repo);
    let mut lookup = PathLookup::new(segments);
    let mut dirs: HashMap<ObjectId, Option<ObjectId>> = HashMap::new();
    let mut listings = Listings::new(entries);
    let mut infos = InfoCache::default();
    let keys = filters.and_then(|f| Some((f, f.keys(segments)?)));
    let walk = commits::newest_first(repo, start)?;
    for (walked, info) in walk.enumerate() {
        if pending.is_empty() || walked >= limits.max_commits || Instant::now() >= limits.deadline {
            break;
        }
        let info = info.map_err(git)?;
        // Directory unchanged against the only parent: nothing in it is this commit's doing
        // (as below, without reading trees). Merges keep the full comparison.
        if let Some((filters, keys)) = &keys {
            if info.parent_ids.len() == 1 && !filters.maybe_changed(&info.id, keys) {
                continue;
            }
        }
        let Some(dir) = dir_of(repo, &mut graph, &mut lookup, &mut dirs, info.id)? else {
            continue;
        };
        let mut parent_dirs = Vec::with_capacity(info.parent_ids.len());
        for parent in info.parent_ids.iter() {
            parent_dirs.push(dir_of(repo, &mut graph, &mut lookup, &mut dirs, *parent)?);
        }
        // Same directory as a parent: nothing in it is this commit's doing.
        if parent_dirs.contains(&Some(dir)) {
            continue;
        }
        let mine = listings.get(repo, dir)?;
        let mut theirs = Vec::with_capacity(parent_dirs.len());
        for parent in parent_dirs.iter().flatten() {
            theirs.push(listings.get(repo, *parent)?);
        }
        let mut credited = Vec::new();
        pending.retain(|&i| {
            let id = Some(entries[i].id);
            let now = mine[i] == id && theirs.iter().all(|listing| listing[i] != id);
            if now {
                credited.push(i);
            }
            !now
        });
        if !credited.is_empty() {
            let info = infos.get(repo, &info.id)?;
            found.extend(credited.into_iter().map(|i| (i, info.clone())));
        }
    }
    Ok(found)
}

/// The id of the directory (by path) in `commit`'s tree, if it is a directory there.
fn dir_of(
    repo: &gix::Repository,
    graph: &mut Graph<'_>,
    lookup: &mut PathLookup,
    memo: &mut HashMap<ObjectId, Option<ObjectId>>,
    commit: ObjectId,
) -> Result<Option<ObjectId>, ViewError> {
    if let Some(dir) = memo.get(&commit) {
        return Ok(*dir);
    }
    let root = graph.get(&commit)?.tree;
    let dir = match lookup.get(repo, root)? {
        Some((Mode::Tree, id)) => Some(id),
        _ => None,
    };
    memo.insert(commit, dir);
    Ok(dir)
}

/// Per directory tree id, the id each listed entry's name has there (by entry index). A walk
/// mostly needs a commit's and its parents' listings, which the next commit needs again, so
/// a small cache suffices.
struct Listings<'e> {
    index: HashMap<&'e [u8], usize>,
    len: usize,
    cache: HashMap<ObjectId, Rc<Vec<Option<ObjectId>>>>,
    buf: Vec<u8>,
}

impl<'e> Listings<'e> {
    fn new(entries: &'e [Entry]) -> Self {
        Listings {
            index: entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.name.as_slice(), i))
                .collect(),
            len: entries.len(),
            cache: HashMap::new(),
            buf: Vec::new(),
        }
    }

    fn get(
        &mut self,
        repo: &gix::Repository,
        tree: ObjectId,
    ) -> Result<Rc<Vec<Option<ObjectId>>>, ViewError> {
        if let Some(listing) = self.cache.get(&tree) {
            return Ok(listing.clone());
        }
        if self.cache.len() >= 64 {
            self.cache.clear();
        }
        let mut listing = vec![None; self.len];
        let index = &self.index;
        paths::for_each_entry(repo, &tree, &mut self.buf, |name, _, id| {
            if let Some(&i) = index.get(name) {
                listing[i] = Some(id.to_owned());
            }
        })?;
        let listing = Rc::new(listing);
        self.cache.insert(tree, listing.clone());
        Ok(listing)
    }
}

pub(crate) fn blob(
    repo: &gix::Repository,
    commit: &str,
    path: &str,
    max_bytes: u64,
) -> Result<Blob, ViewError> {
    let (mode, id) = entry_at(repo, commit, path)?;
    if !matches!(mode, Mode::Blob | Mode::BlobExecutable | Mode::Link) {
        return Err(ViewError::NotFound(format!("file {path:?}")));
    }
    let (_, size) = size_of(repo, id)?;
    if size > max_bytes {
        return Ok(Blob {
            id: commits::hex(&id),
            size,
            data: Vec::new(),
            truncated: true,
            binary: false,
        });
    }
    let data = read_blob(repo, id)?;
    Ok(Blob {
        id: commits::hex(&id),
        size,
        binary: is_binary(&data),
        data,
        truncated: false,
    })
}

/// The whole content of blob `id`; callers check the size from the header first.
pub(crate) fn read_blob(repo: &gix::Repository, id: ObjectId) -> Result<Vec<u8>, ViewError> {
    let object = repo
        .try_find_object(id)
        .map_err(git)?
        .ok_or_else(|| ViewError::NotFound(format!("blob {id}")))?;
    if object.kind != Kind::Blob {
        return Err(ViewError::NotFound(format!("blob {id}")));
    }
    Ok(object.detach().data)
}

pub(crate) fn write_blob(
    repo: &gix::Repository,
    id: &str,
    max_bytes: u64,
    out: &mut dyn Write,
) -> Result<u64, ViewError> {
    let id = commits::parse_id(id)?;
    let (kind, size) = size_of(repo, id)?;
    if kind != Kind::Blob {
        return Err(ViewError::NotFound(format!("blob {id}")));
    }
    if size > max_bytes {
        return Err(ViewError::TooLarge(format!(
            "blob of {size} bytes exceeds {max_bytes}"
        )));
    }
    // gix inflates whole objects; the header check above bounds the memory this takes.
    let data = read_blob(repo, id)?;
    out.write_all(&data).map_err(git)?;
    Ok(data.len() as u64)
}
