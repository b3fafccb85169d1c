//! Branches, tags, revision names in URLs, and ahead/behind counts.

use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet};

use gix::bstr::ByteSlice;
use gix::objs::Kind;
use gix::ObjectId;

use crate::commits::{self, Graph};
use crate::open::git;
use crate::{RefInfo, Refs, Resolved, RevKind, ViewError};

pub(crate) fn is_empty(repo: &gix::Repository) -> Result<bool, ViewError> {
    let platform = repo.references().map_err(git)?;
    let mut all = platform.all().map_err(git)?;
    Ok(all.next().is_none())
}

pub(crate) fn refs(repo: &gix::Repository, limit: usize) -> Result<Refs, ViewError> {
    let platform = repo.references().map_err(git)?;
    let branches = collect(repo, platform.local_branches().map_err(git)?, limit)?;
    let tags = collect(repo, platform.tags().map_err(git)?, limit)?;
    Ok(Refs { branches, tags })
}

/// Peels each ref to a commit (skipping broken refs and tags of trees or blobs), newest first.
fn collect<'r>(
    repo: &gix::Repository,
    iter: impl Iterator<Item = gix::Result<gix::Reference<'r>>>,
    limit: usize,
) -> Result<Vec<RefInfo>, ViewError> {
    let mut out = Vec::new();
    for reference in iter {
        let mut reference = reference.map_err(git)?;
        let name = reference.name().shorten().to_str_lossy().into_owned();
        let Ok(id) = reference.peel_to_id() else {
            continue;
        };
        let id = id.detach();
        if !is_commit(repo, id)? {
            continue;
        }
        out.push(RefInfo {
            name,
            commit: commits::info(repo, &id)?,
        });
    }
    out.sort_by(|a, b| {
        b.commit
            .committer_time
            .cmp(&a.commit.committer_time)
            .then_with(|| a.name.cmp(&b.name))
    });
    out.truncate(limit);
    Ok(out)
}

fn is_commit(repo: &gix::Repository, id: ObjectId) -> Result<bool, ViewError> {
    Ok(repo
        .try_find_header(id)
        .map_err(git)?
        .is_some_and(|h| h.kind() == Kind::Commit))
}

/// The commit `refs/heads/<name>` or else `refs/tags/<name>` peels to. Names git would reject
/// (`..`, control characters, ...) name nothing.
fn named(repo: &gix::Repository, name: &str) -> Result<Option<(RevKind, ObjectId)>, ViewError> {
    for (prefix, kind) in [
        ("refs/heads/", RevKind::Branch),
        ("refs/tags/", RevKind::Tag),
    ] {
        let Ok(full) = gix::refs::FullName::try_from(format!("{prefix}{name}").as_str()) else {
            continue;
        };
        // A lookup that fails (a name too long for the file system, say) names no ref.
        let Ok(Some(mut reference)) = repo.try_find_reference(full.as_ref()) else {
            continue;
        };
        let Ok(id) = reference.peel_to_id() else {
            continue;
        };
        let id = id.detach();
        if is_commit(repo, id)? {
            return Ok(Some((kind, id)));
        }
    }
    Ok(None)
}

/// A full or abbreviated (>= 7 hex digits) id of an existing commit.
fn commit_id(repo: &gix::Repository, hex: &str) -> Result<Option<ObjectId>, ViewError> {
    if !(7..=40).contains(&hex.len()) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let hex = hex.to_ascii_lowercase();
    if hex.len() == 40 {
        let id = commits::parse_id(&hex)?;
        return Ok(is_commit(repo, id)?.then_some(id));
    }
    let prefix =
        gix::hash::Prefix::from_hex(&hex).map_err(|e| ViewError::Invalid(e.to_string()))?;
    match repo.objects.lookup_prefix(prefix, None).map_err(git)? {
        None => Ok(None),
        Some(Ok(id)) => Ok(is_commit(repo, id)?.then_some(id)),
        Some(Err(())) => {
            // Ambiguous: like git with a commit expected, it is fine if only one is a commit.
            let mut candidates = HashSet::new();
            repo.objects
                .lookup_prefix(prefix, Some(&mut candidates))
                .map_err(git)?;
            let mut found = None;
            for id in candidates {
                if is_commit(repo, id)? {
                    if found.is_some() {
                        return Ok(None);
                    }
                    found = Some(id);
                }
            }
            Ok(found)
        }
    }
}

pub(crate) fn resolve(
    repo: &gix::Repository,
    rev_and_path: &str,
) -> Result<(Resolved, String), ViewError> {
    let segments: Vec<&str> = rev_and_path.split('/').collect();
    if rev_and_path.is_empty() || rev_and_path.contains('\0') {
        return Err(ViewError::NotFound(format!(
            "revision {:?}",
            commits::truncate(rev_and_path)
        )));
    }
    let rest = |used: usize| -> Result<String, ViewError> {
        let path = segments[used..].join("/");
        crate::paths::segments(&path)?;
        Ok(path)
    };
    for used in (1..=segments.len()).rev() {
        let name = segments[..used].join("/");
        if let Some((kind, id)) = named(repo, &name)? {
            return Ok((
                Resolved {
                    name,
                    kind,
                    commit: commits::hex(&id),
                },
                rest(used)?,
            ));
        }
    }
    if let Some(id) = commit_id(repo, segments[0])? {
        let resolved = Resolved {
            name: segments[0].to_owned(),
            kind: RevKind::Commit,
            commit: commits::hex(&id),
        };
        return Ok((resolved, rest(1)?));
    }
    Err(ViewError::NotFound(format!(
        "revision in {:?}",
        commits::truncate(rev_and_path)
    )))
}

pub(crate) fn resolve_rev(repo: &gix::Repository, rev: &str) -> Result<Resolved, ViewError> {
    if !rev.is_empty() && !rev.contains('\0') {
        if let Some((kind, id)) = named(repo, rev)? {
            return Ok(Resolved {
                name: rev.to_owned(),
                kind,
                commit: commits::hex(&id),
            });
        }
        if let Some(id) = commit_id(repo, rev)? {
            return Ok(Resolved {
                name: rev.to_owned(),
                kind: RevKind::Commit,
                commit: commits::hex(&id),
            });
        }
    }
    Err(ViewError::NotFound(format!(
        "revision {:?}",
        commits::truncate(rev)
    )))
}

const BRANCH: u8 = 1;
const BASE: u8 = 2;
const BOTH: u8 = BRANCH | BASE;

/// Paints commits reachable from either side, newest first, until only commits reachable
/// from both remain queued (like git's ahead-behind). Bounded, unlike gix's version.
pub(crate) fn ahead_behind(
    repo: &gix::Repository,
    base: &str,
    branch: &str,
    max_walk: usize,
) -> Result<Option<(usize, usize)>, ViewError> {
    let base = commits::parse_id(&resolve_rev(repo, base)?.commit)?;
    let branch = commits::parse_id(&resolve_rev(repo, branch)?.commit)?;
    let mut paint = Paint {
        graph: Graph::new(repo),
        flags: HashMap::new(),
        queue: BinaryHeap::new(),
        unsettled: 0,
        ahead: 0,
        behind: 0,
    };
    paint.add(branch, BRANCH)?;
    paint.add(base, BASE)?;
    let mut walked = 0usize;
    while paint.unsettled > 0 {
        let Some((_, id)) = paint.queue.pop() else {
            break;
        };
        let Some(state) = paint.flags.get_mut(&id) else {
            continue;
        };
        state.1 = false;
        let side = state.0;
        match side {
            BRANCH => paint.ahead += 1,
            BASE => paint.behind += 1,
            _ => {}
        }
        if side != BOTH {
            paint.unsettled -= 1;
        }
        walked += 1;
        if walked > max_walk {
            return Ok(None);
        }
        for parent in paint.graph.get(&id)?.parents {
            paint.add(parent, side)?;
        }
    }
    Ok(Some((paint.ahead, paint.behind)))
}

struct Paint<'r> {
    graph: Graph<'r>,
    /// Side flags, and whether the commit is still queued.
    flags: HashMap<ObjectId, (u8, bool)>,
    queue: BinaryHeap<(i64, ObjectId)>,
    /// Queued commits not yet known to be reachable from both sides.
    unsettled: usize,
    ahead: usize,
    behind: usize,
}

impl Paint<'_> {
    fn add(&mut self, id: ObjectId, side: u8) -> Result<(), ViewError> {
        match self.flags.entry(id) {
            Entry::Vacant(slot) => {
                slot.insert((side, true));
                self.queue.push((self.graph.get(&id)?.time, id));
                if side != BOTH {
                    self.unsettled += 1;
                }
            }
            Entry::Occupied(mut slot) => {
                let (old, queued) = *slot.get();
                let new = old | side;
                if new == old {
                    return Ok(());
                }
                slot.insert((new, true));
                if queued {
                    self.unsettled -= 1; // one side plus the other is both
                } else {
                    // Reached again after it was counted (clock skew): uncount, requeue as both.
                    match old {
                        BRANCH => self.ahead -= 1,
                        BASE => self.behind -= 1,
                        _ => {}
                    }
                    self.queue.push((self.graph.get(&id)?.time, id));
                }
            }
        }
        Ok(())
    }
}
