//! Searching one revision: file names ("go to file") and contents (like `git grep -i -F`),
//! bounded in time and results.

use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::response::Response;
use kura_view::SearchLimits;
use serde::Deserialize;

use super::render::{encode_path, escape};
use super::repo::{open, Head};
use super::{page, Chrome, Visitor, WebError};
use crate::app::AppState;

pub struct MatchLine {
    pub line_no: u32,
    pub href: String,
    /// Escaped text with `<mark>` around matches.
    pub html: String,
}

pub struct FileMatchRow {
    pub path: String,
    pub href: String,
    pub lines: Vec<MatchLine>,
}

#[derive(askama::Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    head: Head,
    q: String,
    files: Vec<(String, String)>,
    matches: Vec<FileMatchRow>,
    truncated: bool,
    searched: bool,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    #[serde(rename = "ref")]
    rev: Option<String>,
}

fn marked(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for &(s, e) in ranges {
        if s < at || e > text.len() || !text.is_char_boundary(s) || !text.is_char_boundary(e) {
            continue;
        }
        out.push_str(&escape(&text[at..s]));
        out.push_str("<mark>");
        out.push_str(&escape(&text[s..e]));
        out.push_str("</mark>");
        at = e;
    }
    out.push_str(&escape(&text[at..]));
    out
}

pub async fn search(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, WebError> {
    let mut c = open(&s, v, &ns, &name, "code").await?;
    let query: String = q.q.unwrap_or_default().trim().chars().take(200).collect();
    c.head.q = query.clone();
    let rev = q
        .rev
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| c.acc.repo.default_branch.clone());
    if query.is_empty() {
        return Ok(page(SearchPage {
            chrome: c.v.chrome,
            head: c.head,
            q: query,
            files: Vec::new(),
            matches: Vec::new(),
            truncated: false,
            searched: false,
        }));
    }
    let qq = query.clone();
    let (resolved, files, result) = s
        .ops
        .read(&c.acc.repo, move |r| {
            let resolved = r.resolve_rev(&rev)?;
            let files = r.find_files(&resolved.commit, &qq, 20)?;
            let limits = SearchLimits {
                max_matches: 200,
                max_files: 100_000,
                max_file_bytes: 1024 * 1024,
                deadline: Instant::now() + Duration::from_secs(2),
            };
            let result = r.grep(&resolved.commit, &qq, &limits)?;
            Ok((resolved, files, result))
        })
        .await?;
    c.at(&resolved);
    let blob = |p: &str| format!("{}/blob/{}/{}", c.head.base, c.head.rev, encode_path(p));
    let files = files.iter().map(|p| (p.clone(), blob(p))).collect();
    let matches = result
        .files
        .iter()
        .map(|f| FileMatchRow {
            href: blob(&f.path),
            lines: f
                .lines
                .iter()
                .map(|l| MatchLine {
                    line_no: l.line_no,
                    href: format!("{}#L{}", blob(&f.path), l.line_no),
                    html: marked(&l.text, &l.ranges),
                })
                .collect(),
            path: f.path.clone(),
        })
        .collect();
    Ok(page(SearchPage {
        chrome: c.v.chrome.clone(),
        head: c.head,
        q: query,
        files,
        matches,
        truncated: result.truncated,
        searched: true,
    }))
}
