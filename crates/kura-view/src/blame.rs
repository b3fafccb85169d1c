//! Blame with gix-blame, bounded: commits beyond `max_commits` become boundaries (as
//! `git blame --since`), and object reads fail once the deadline has passed.

use std::time::Instant;

use gix::bstr::BStr;
use gix::objs::tree::EntryKind as Mode;
use gix::ObjectId;

use crate::commits::{self, InfoCache};
use crate::open::git;
use crate::{paths, tree, BlameHunk, Limits, ViewError};

#[derive(Debug, thiserror::Error)]
#[error("the blame deadline passed")]
struct Expired;

/// The object database, refusing reads after the deadline so a long blame stops early.
struct Bounded<'a> {
    objects: &'a gix::OdbHandle,
    deadline: Instant,
}

impl gix::objs::Find for Bounded<'_> {
    fn try_find<'b>(
        &self,
        id: &gix::oid,
        buffer: &'b mut Vec<u8>,
    ) -> gix::Result<Option<gix::objs::Data<'b>>> {
        if Instant::now() >= self.deadline {
            return Err(gix::Error::from_error(Expired));
        }
        self.objects.try_find(id, buffer)
    }
}

impl gix::objs::FindHeader for Bounded<'_> {
    fn try_header(&self, id: &gix::oid) -> gix::Result<Option<gix::objs::Header>> {
        self.objects.try_header(id)
    }
}

pub(crate) fn blame(
    repo: &gix::Repository,
    commit: &str,
    path: &str,
    limits: &Limits,
) -> Result<Vec<BlameHunk>, ViewError> {
    let segments = paths::segments(path)?;
    if segments.is_empty() {
        return Err(ViewError::Invalid("blame needs a file path".into()));
    }
    let (mode, blob) = tree::entry_at(repo, commit, path)?;
    if !matches!(mode, Mode::Blob | Mode::BlobExecutable | Mode::Link) {
        return Err(ViewError::NotFound(format!("file {path:?}")));
    }
    if tree::is_binary(&tree::read_blob(repo, blob)?) {
        return Ok(Vec::new());
    }
    let start = commits::parse_id(commit)?;
    let since =
        boundary_time(repo, start, limits)?.map(|seconds| gix::date::Time { seconds, offset: 0 });
    let options = gix::blame::Options {
        diff_algorithm: gix::diff::blob::Algorithm::Myers,
        ranges: Default::default(),
        since,
        rewrites: Some(Default::default()),
        debug_track_path: false,
    };
    let mut cache = crate::diff::resource_cache(repo)?;
    let odb = Bounded {
        objects: &repo.objects,
        deadline: limits.deadline,
    };
    let graph = repo.commit_graph_if_enabled().ok().flatten();
    let outcome = gix::blame::file(
        odb,
        gix::blame::Start::Commit(start),
        graph,
        &mut cache,
        BStr::new(path),
        options,
    )
    .map_err(|err| {
        if Instant::now() >= limits.deadline {
            ViewError::TooLarge("blame took longer than allowed".into())
        } else {
            git(err)
        }
    })?;

    let mut infos = InfoCache::default();
    let mut hunks: Vec<BlameHunk> = Vec::new();
    let mut entries = outcome.entries;
    entries.sort_by_key(|e| e.start_in_blamed_file);
    for entry in entries {
        let start_line = entry.start_in_blamed_file + 1;
        let lines = entry.len.get();
        if let Some(last) = hunks.last_mut() {
            if last.commit.id == commits::hex(&entry.commit_id)
                && last.start_line + last.lines == start_line
            {
                last.lines += lines;
                continue;
            }
        }
        hunks.push(BlameHunk {
            commit: infos.get(repo, &entry.commit_id)?,
            start_line,
            lines,
        });
    }
    Ok(hunks)
}

/// The commit time of the `max_commits`-th newest commit, when history is longer than that.
fn boundary_time(
    repo: &gix::Repository,
    start: ObjectId,
    limits: &Limits,
) -> Result<Option<i64>, ViewError> {
    let walk = commits::newest_first(repo, start)?;
    for (walked, info) in walk.enumerate() {
        let info = info.map_err(git)?;
        if walked + 1 >= limits.max_commits.max(1) {
            return Ok(Some(info.commit_time.unwrap_or(0)));
        }
    }
    Ok(None)
}
