//! History: commit logs (per path too), one commit with its diff, and comparisons.

use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

use kura_view::{CommitDetail, Diff, DiffLimits, FileStatus, LineKind};
use serde::Deserialize;

use super::render::{self, encode_path};
use super::repo::{commit_row, limits, open, CommitRow, Head};
use super::{page, Chrome, Visitor, WebError};
use crate::app::AppState;

const PER_PAGE: usize = 30;

#[derive(askama::Template)]
#[template(path = "commits.html")]
struct CommitsPage {
    chrome: Chrome,
    head: Head,
    path: String,
    commits: Vec<CommitRow>,
    newer: Option<String>,
    older: Option<String>,
    truncated: bool,
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<usize>,
}

pub async fn commits_default(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let c = open(&s, v, &ns, &name, "commits").await?;
    Ok(Redirect::to(&format!("{}/commits/{}", c.head.base, c.head.rev)).into_response())
}

pub async fn commits(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, rest)): Path<(String, String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let mut c = open(&s, v, &ns, &name, "commits").await?;
    let n = q.page.unwrap_or(0).min(10_000);
    let now = kura_db::now();
    let (rev, path, log) = s
        .ops
        .read(&c.acc.repo, move |r| {
            let (rev, path) = r.resolve(&rest)?;
            let path = path.trim_end_matches('/').to_string();
            let p = (!path.is_empty()).then_some(path.as_str());
            let log = r.log(
                &rev.commit,
                p,
                n * PER_PAGE,
                PER_PAGE,
                &limits(2_000, 200_000),
            )?;
            Ok((rev, path, log))
        })
        .await?;
    c.at(&rev);
    let here = format!(
        "{}/commits/{}{}",
        c.head.base,
        c.head.rev,
        if path.is_empty() {
            String::new()
        } else {
            format!("/{}", encode_path(&path))
        }
    );
    Ok(page(CommitsPage {
        commits: log
            .commits
            .iter()
            .map(|x| commit_row(&c.head, x, now))
            .collect(),
        newer: (n > 0).then(|| {
            if n == 1 {
                here.clone()
            } else {
                format!("{here}?page={}", n - 1)
            }
        }),
        older: log.has_more.then(|| format!("{here}?page={}", n + 1)),
        truncated: log.truncated,
        path,
        chrome: c.v.chrome.clone(),
        head: c.head,
    }))
}

pub struct DiffLineRow {
    pub class: &'static str,
    pub old_no: String,
    pub new_no: String,
    pub text: String,
}

pub struct DiffFileRow {
    pub anchor: String,
    pub path: String,
    pub old_path: Option<String>,
    pub status: &'static str,
    pub status_class: String,
    pub added: u32,
    pub removed: u32,
    pub note: Option<&'static str>,
    pub blob_href: Option<String>,
    /// Hunk headers and lines, in order (`class` "hunk" for headers).
    pub lines: Vec<DiffLineRow>,
}

fn diff_rows(head: &Head, new_rev: &str, d: Diff) -> (Vec<DiffFileRow>, u32, u32) {
    let (mut adds, mut dels) = (0, 0);
    let files = d
        .files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            adds += f.added;
            dels += f.removed;
            let path = f
                .new_path
                .clone()
                .or_else(|| f.old_path.clone())
                .unwrap_or_default();
            let mut lines = Vec::new();
            for h in f.hunks {
                lines.push(DiffLineRow {
                    class: "hunk",
                    old_no: String::new(),
                    new_no: String::new(),
                    text: h.header,
                });
                for l in h.lines {
                    lines.push(DiffLineRow {
                        class: match l.kind {
                            LineKind::Added => "add",
                            LineKind::Removed => "del",
                            LineKind::Context => "ctx",
                        },
                        old_no: l.old_no.map(|n| n.to_string()).unwrap_or_default(),
                        new_no: l.new_no.map(|n| n.to_string()).unwrap_or_default(),
                        text: l.text,
                    });
                }
            }
            let status = match f.status {
                FileStatus::Added => "added",
                FileStatus::Deleted => "deleted",
                FileStatus::Modified => "modified",
                FileStatus::Renamed => "renamed",
                FileStatus::Copied => "copied",
                FileStatus::TypeChanged => "type changed",
            };
            DiffFileRow {
                anchor: format!("diff-{i}"),
                status,
                status_class: status.replace(' ', "-"),
                old_path: (f.status == FileStatus::Renamed || f.status == FileStatus::Copied)
                    .then(|| f.old_path.clone().unwrap_or_default()),
                note: if f.binary {
                    Some("Binary file")
                } else if f.too_large {
                    Some("File too large to show")
                } else if f.truncated {
                    Some("Diff cut short: too many lines")
                } else {
                    None
                },
                blob_href: f
                    .new_path
                    .as_ref()
                    .map(|p| format!("{}/blob/{new_rev}/{}", head.base, encode_path(p))),
                added: f.added,
                removed: f.removed,
                lines,
                path,
            }
        })
        .collect();
    (files, adds, dels)
}

fn diff_limits() -> DiffLimits {
    DiffLimits {
        max_files: 300,
        max_lines: 20_000,
        max_blob_bytes: 1024 * 1024,
        deadline: Instant::now() + Duration::from_secs(5),
    }
}

#[derive(askama::Template)]
#[template(path = "commit.html")]
struct CommitPage {
    chrome: Chrome,
    head: Head,
    c: CommitRow,
    message_body: String,
    author_email: String,
    committer: String,
    parents: Vec<(String, String)>,
    files: Vec<DiffFileRow>,
    added: u32,
    removed: u32,
    truncated: bool,
    tree_href: String,
    files_href: String,
}

pub async fn commit(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, sha)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let mut c = open(&s, v, &ns, &name, "commits").await?;
    let now = kura_db::now();
    let cache = s.pages.clone();
    let repo_id = c.acc.repo.id;
    let (rev, found) = s
        .ops
        .read(&c.acc.repo, move |r| {
            let rev = r.resolve_rev(&sha)?;
            let key = format!("commit:{repo_id}:{}", rev.commit);
            if let Some(hit) = cache.get::<(CommitDetail, Diff)>(&key) {
                return Ok((rev, hit));
            }
            let detail = r.commit(&rev.commit)?;
            let diff = r.diff(
                detail.parents.first().map(String::as_str),
                &detail.info.id,
                &diff_limits(),
            )?;
            let weight = diff
                .files
                .iter()
                .flat_map(|f| &f.hunks)
                .flat_map(|h| &h.lines)
                .map(|l| l.text.len() + 48)
                .sum::<usize>()
                + detail.message.len();
            let found = Arc::new((detail, diff));
            cache.put(key, found.clone(), weight);
            Ok((rev, found))
        })
        .await?;
    let (detail, diff) = found.as_ref().clone();
    if rev.kind != kura_view::RevKind::Commit || rev.name != detail.info.id {
        // Abbreviated ids and ref names: the canonical URL.
        if rev.kind != kura_view::RevKind::Commit || rev.name.len() != 40 {
            return Ok(
                Redirect::to(&format!("{}/commit/{}", c.head.base, detail.info.id)).into_response(),
            );
        }
    }
    c.at(&rev);
    let truncated = diff.truncated;
    let (files, added, removed) = diff_rows(&c.head, &detail.info.id, diff);
    let body = detail
        .message
        .split_once('\n')
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    let parents = detail
        .parents
        .iter()
        .map(|p| {
            (
                p.chars().take(10).collect(),
                format!("{}/commit/{p}", c.head.base),
            )
        })
        .collect();
    Ok(page(CommitPage {
        c: commit_row(&c.head, &detail.info, now),
        message_body: body,
        author_email: detail.info.author_email.clone(),
        committer: detail.committer_name.clone(),
        parents,
        files,
        added,
        removed,
        truncated,
        tree_href: format!("{}/tree/{}", c.head.base, detail.info.id),
        files_href: format!("{}/tree/{}", c.head.base, detail.info.id),
        chrome: c.v.chrome.clone(),
        head: c.head,
    }))
}

#[derive(askama::Template)]
#[template(path = "compare.html")]
struct ComparePage {
    chrome: Chrome,
    head: Head,
    base_name: String,
    head_name: String,
    commits: Vec<CommitRow>,
    files: Vec<DiffFileRow>,
    added: u32,
    removed: u32,
    truncated: bool,
    unrelated: bool,
    files_href: String,
}

/// `/compare/BASE...HEAD`: what HEAD has that BASE lacks, diffed from their merge base.
pub async fn compare(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, spec)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let mut c = open(&s, v, &ns, &name, "commits").await?;
    let Some((b, h)) = spec.split_once("...").or_else(|| spec.split_once("..")) else {
        return Err(WebError::bad_request(
            "Compare two revisions as BASE...HEAD, for example main...feature.",
        ));
    };
    let (b, h) = (b.to_string(), h.to_string());
    let now = kura_db::now();
    let (bn, hn, commits, diff, unrelated) = s
        .ops
        .read(&c.acc.repo, move |r| {
            let base = r.resolve_rev(&b)?;
            let head = r.resolve_rev(&h)?;
            let mb = r.merge_base(&base.commit, &head.commit)?;
            let log = r.log(&head.commit, None, 0, 250, &limits(2_000, 100_000))?;
            // Commits of HEAD down to the merge base (first-parent order is close enough for a page).
            let mut commits = Vec::new();
            for c in log.commits {
                if Some(&c.id) == mb.as_ref() {
                    break;
                }
                commits.push(c);
            }
            let diff = r.diff(
                Some(mb.as_deref().unwrap_or(&base.commit)),
                &head.commit,
                &diff_limits(),
            )?;
            Ok((base.name, head.name, commits, diff, mb.is_none()))
        })
        .await?;
    c.head.rev = encode_path(&hn);
    c.head.rev_name = hn.clone();
    let truncated = diff.truncated;
    let (files, added, removed) = diff_rows(&c.head, &render::encode_path(&hn), diff);
    Ok(page(ComparePage {
        commits: commits
            .iter()
            .map(|x| commit_row(&c.head, x, now))
            .collect(),
        base_name: bn,
        head_name: hn,
        files,
        added,
        removed,
        truncated,
        unrelated,
        files_href: format!("{}/tree/{}", c.head.base, c.head.rev),
        chrome: c.v.chrome,
        head: c.head,
    }))
}
