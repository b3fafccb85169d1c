//! History: commit logs (optionally of one path), single commits, merge bases.

use std::collections::HashMap;
use std::time::Instant;

use gix::objs::tree::EntryKind as Mode;
use gix::ObjectId;

use crate::bloom::Filters;
use crate::commits::{self, Graph};
use crate::open::git;
use crate::paths::{self, PathLookup};
use crate::{CommitDetail, Limits, LogPage, ViewError};

pub(crate) fn log(
    repo: &gix::Repository,
    filters: Option<&Filters>,
    start: &str,
    path: Option<&str>,
    skip: usize,
    limit: usize,
    limits: &Limits,
) -> Result<LogPage, ViewError> {
    let start = commits::require(repo, start)?;
    let segments = paths::segments(path.unwrap_or(""))?;
    let keys = filters.and_then(|f| Some((f, f.keys(&segments)?)));
    let mut filter = (!segments.is_empty()).then(|| PathFilter {
        graph: Graph::new(repo),
        lookup: PathLookup::new(&segments),
        memo: HashMap::new(),
    });
    let walk = commits::newest_first(repo, start)?;
    let mut page = LogPage {
        commits: Vec::new(),
        has_more: false,
        truncated: false,
    };
    let mut matched = 0usize;
    for (examined, info) in walk.enumerate() {
        if examined >= limits.max_commits || Instant::now() >= limits.deadline {
            page.truncated = true;
            break;
        }
        let info = info.map_err(git)?;
        if let Some(filter) = &mut filter {
            // The filter is against the first parent, exactly the comparison made below.
            if let Some((filters, keys)) = &keys {
                if !filters.maybe_changed(&info.id, keys) {
                    continue;
                }
            }
            if !filter.changed(repo, info.id, info.parent_ids.first().copied())? {
                continue;
            }
        }
        matched += 1;
        if matched <= skip {
            continue;
        }
        if page.commits.len() == limit {
            page.has_more = true;
            break;
        }
        page.commits.push(commits::info(repo, &info.id)?);
    }
    Ok(page)
}

/// Whether a commit changed one path against its first parent.
struct PathFilter<'r> {
    graph: Graph<'r>,
    lookup: PathLookup,
    memo: HashMap<ObjectId, Option<(Mode, ObjectId)>>,
}

impl PathFilter<'_> {
    fn changed(
        &mut self,
        repo: &gix::Repository,
        commit: ObjectId,
        parent: Option<ObjectId>,
    ) -> Result<bool, ViewError> {
        let mine = self.at(repo, commit)?;
        Ok(match parent {
            Some(parent) => mine != self.at(repo, parent)?,
            None => mine.is_some(),
        })
    }

    /// The path's entry (mode and id) in `commit`, memoised: each commit is also a parent.
    fn at(
        &mut self,
        repo: &gix::Repository,
        commit: ObjectId,
    ) -> Result<Option<(Mode, ObjectId)>, ViewError> {
        if let Some(found) = self.memo.get(&commit) {
            return Ok(*found);
        }
        let root = self.graph.get(&commit)?.tree;
        let found = self.lookup.get(repo, root)?;
        self.memo.insert(commit, found);
        Ok(found)
    }
}

pub(crate) fn commit(repo: &gix::Repository, id: &str) -> Result<CommitDetail, ViewError> {
    let id = commits::parse_id(id)?;
    commits::detail(repo, &id)
}

pub(crate) fn merge_base(
    repo: &gix::Repository,
    a: &str,
    b: &str,
) -> Result<Option<String>, ViewError> {
    let a = commits::require(repo, a)?;
    let b = commits::require(repo, b)?;
    Ok(repo
        .merge_base(a, b)
        .map_err(git)?
        .map(|id| commits::hex(&id)))
}
