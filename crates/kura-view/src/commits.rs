//! Commit ids, commit lookups and the `CommitInfo` summaries the pages show.

use std::collections::HashMap;

use gix::bstr::ByteSlice;
use gix::objs::{CommitRef, Find, Kind};
use gix::{oid, ObjectId};

use crate::open::git;
use crate::{CommitDetail, CommitInfo, ViewError};

/// Commits reachable from `start`, newest commit time first: the order every walk here uses.
pub(crate) fn newest_first(
    repo: &gix::Repository,
    start: ObjectId,
) -> Result<gix::revision::Walk<'_>, ViewError> {
    repo.rev_walk([start])
        .sorting(gix::revision::walk::Sorting::ByCommitTime(
            gix::traverse::commit::simple::CommitTimeOrder::NewestFirst,
        ))
        .all()
        .map_err(git)
}

/// A 40-character hex id (either case); anything else cannot name an object.
pub(crate) fn parse_id(hex: &str) -> Result<ObjectId, ViewError> {
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ViewError::Invalid(format!(
            "not an object id: {:?}",
            truncate(hex)
        )));
    }
    ObjectId::from_hex(hex.as_bytes())
        .map_err(|_| ViewError::Invalid(format!("not an object id: {hex:?}")))
}

pub(crate) fn hex(id: &oid) -> String {
    id.to_hex().to_string()
}

/// Keeps error messages short when callers pass long garbage.
pub(crate) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// Reads and parses commit `id`; `NotFound` when it is missing or not a commit.
pub(crate) fn read<'b>(
    repo: &gix::Repository,
    id: &oid,
    buf: &'b mut Vec<u8>,
) -> Result<CommitRef<'b>, ViewError> {
    let data = repo
        .objects
        .try_find(id, buf)
        .map_err(git)?
        .ok_or_else(|| ViewError::NotFound(format!("commit {id}")))?;
    if data.kind != Kind::Commit {
        return Err(ViewError::NotFound(format!("commit {id}")));
    }
    CommitRef::from_bytes(data.data, data.object_hash).map_err(git)
}

/// The commit named by the hex `id`, which must exist.
pub(crate) fn require(repo: &gix::Repository, id: &str) -> Result<ObjectId, ViewError> {
    let id = parse_id(id)?;
    read(repo, &id, &mut Vec::new())?;
    Ok(id)
}

pub(crate) fn tree_of(repo: &gix::Repository, id: &oid) -> Result<ObjectId, ViewError> {
    Ok(read(repo, id, &mut Vec::new())?.tree())
}

pub(crate) fn info_from(id: &oid, commit: &CommitRef<'_>) -> CommitInfo {
    let (author_name, author_email, author_time) = match commit.author() {
        Ok(sig) => {
            let sig = sig.trim();
            (
                sig.name.to_str_lossy().into_owned(),
                sig.email.to_str_lossy().into_owned(),
                sig.seconds(),
            )
        }
        Err(_) => (String::new(), String::new(), 0),
    };
    CommitInfo {
        id: hex(id),
        title: title(commit.message),
        author_name,
        author_email,
        author_time,
        committer_time: commit.committer().map(|sig| sig.seconds()).unwrap_or(0),
    }
}

/// The first non-blank line of the message, trimmed.
fn title(message: &gix::bstr::BStr) -> String {
    message
        .lines()
        .map(|line| line.trim())
        .find(|line| !line.is_empty())
        .map(|line| line.to_str_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn info(repo: &gix::Repository, id: &oid) -> Result<CommitInfo, ViewError> {
    let mut buf = Vec::new();
    let commit = read(repo, id, &mut buf)?;
    Ok(info_from(id, &commit))
}

/// Memoised `info`: hunks and entries often share commits.
#[derive(Default)]
pub(crate) struct InfoCache(HashMap<ObjectId, CommitInfo>);

impl InfoCache {
    pub(crate) fn get(
        &mut self,
        repo: &gix::Repository,
        id: &oid,
    ) -> Result<CommitInfo, ViewError> {
        if let Some(info) = self.0.get(id) {
            return Ok(info.clone());
        }
        let found = info(repo, id)?;
        self.0.insert(id.to_owned(), found.clone());
        Ok(found)
    }
}

pub(crate) fn detail(repo: &gix::Repository, id: &oid) -> Result<CommitDetail, ViewError> {
    let mut buf = Vec::new();
    let commit = read(repo, id, &mut buf)?;
    let (committer_name, committer_email) = match commit.committer() {
        Ok(sig) => {
            let sig = sig.trim();
            (
                sig.name.to_str_lossy().into_owned(),
                sig.email.to_str_lossy().into_owned(),
            )
        }
        Err(_) => (String::new(), String::new()),
    };
    Ok(CommitDetail {
        info: info_from(id, &commit),
        message: commit.message.to_str_lossy().into_owned(),
        committer_name,
        committer_email,
        parents: commit.parents().map(|p| hex(&p)).collect(),
        tree: hex(&commit.tree()),
    })
}

/// What history walks need of a commit, from the commit-graph when it has it (no inflating).
pub(crate) struct Lite {
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    pub time: i64,
}

pub(crate) struct Graph<'r> {
    repo: &'r gix::Repository,
    graph: Option<gix::commitgraph::Graph>,
    buf: Vec<u8>,
}

impl<'r> Graph<'r> {
    pub(crate) fn new(repo: &'r gix::Repository) -> Self {
        // A broken commit-graph only costs speed: fall back to the objects.
        let graph = repo.commit_graph_if_enabled().ok().flatten();
        Graph {
            repo,
            graph,
            buf: Vec::new(),
        }
    }

    pub(crate) fn get(&mut self, id: &oid) -> Result<Lite, ViewError> {
        if let Some((graph, commit)) = self
            .graph
            .as_ref()
            .and_then(|g| Some((g, g.commit_by_id(id)?)))
        {
            let parents = commit
                .iter_parents()
                .map(|pos| pos.map(|pos| graph.id_at(pos).to_owned()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(git)?;
            return Ok(Lite {
                tree: commit.root_tree_id().to_owned(),
                parents,
                time: i64::try_from(commit.committer_timestamp()).unwrap_or(i64::MAX),
            });
        }
        let commit = read(self.repo, id, &mut self.buf)?;
        Ok(Lite {
            tree: commit.tree(),
            parents: commit.parents().collect(),
            time: commit.committer().map(|sig| sig.seconds()).unwrap_or(0),
        })
    }
}
