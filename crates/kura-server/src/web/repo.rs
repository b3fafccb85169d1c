//! A repository's code: the summary page, folders, files, raw files and blame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use kura_db::Role;
use kura_view::{EntryKind, Limits, Resolved, RevKind};
use serde::Deserialize;

use super::render::{self, age, encode_path, utc, LinkBase};
use super::{page, Chrome, Visitor, WebError};
use crate::access::{self, RepoAccess};
use crate::app::AppState;
use crate::names::RepoPath;

/// Largest file shown in a page (larger ones: a link to the raw file).
pub const MAX_PAGE_BLOB: u64 = 1024 * 1024;
/// Largest file served raw (whole files are read into memory by gix).
pub const MAX_RAW_BLOB: u64 = 64 * 1024 * 1024;
/// README files rendered on the summary page.
const README_NAMES: &[&str] = &[
    "README.md",
    "README.markdown",
    "readme.md",
    "README",
    "README.txt",
    "Readme.md",
];

pub fn limits(ms: u64, max_commits: usize) -> Limits {
    Limits {
        max_commits,
        deadline: Instant::now() + Duration::from_millis(ms),
    }
}

/// The heading and tabs every repository page shows.
#[derive(Debug, Clone)]
pub struct Head {
    pub full_name: String,
    pub ns: String,
    pub name: String,
    /// `/ns/name`, encoded.
    pub base: String,
    pub public: bool,
    pub tab: &'static str,
    /// The revision the page shows, as in URLs (encoded), for the tabs and the search form.
    pub rev: String,
    pub rev_name: String,
    pub can_admin: bool,
    /// What the search box shows (the search page's query).
    pub q: String,
}

pub struct Ctx {
    pub v: Visitor,
    pub acc: RepoAccess,
    pub head: Head,
}

/// The visitor's access to the repository: missing and hidden give the same page.
pub async fn open(
    s: &AppState,
    v: Visitor,
    ns: &str,
    name: &str,
    tab: &'static str,
) -> Result<Ctx, WebError> {
    let path = RepoPath::new(ns, name).map_err(|_| WebError::no_repo())?;
    let acc = access::repo(&s.ops, s.config.allow_anonymous_read, &v.caller, &path).await?;
    acc.check(&v.caller, Role::Read)?;
    let full_name = acc.repo.full_name();
    let head = Head {
        base: format!("/{}", encode_path(&full_name)),
        ns: acc.repo.namespace.clone(),
        name: acc.repo.name.clone(),
        full_name,
        public: acc.repo.is_public,
        tab,
        rev: encode_path(&acc.repo.default_branch),
        rev_name: acc.repo.default_branch.clone(),
        can_admin: acc.role >= Role::Admin,
        q: String::new(),
    };
    Ok(Ctx { v, acc, head })
}

impl Ctx {
    pub fn at(&mut self, r: &Resolved) {
        self.head.rev = encode_path(&r.name);
        self.head.rev_name = r.name.clone();
    }
}

/// Breadcrumbs of a path: (name, href of its folder page).
pub fn crumbs(head: &Head, path: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut acc = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(seg);
        out.push((
            seg.to_string(),
            format!("{}/tree/{}/{}", head.base, head.rev, encode_path(&acc)),
        ));
    }
    out
}

pub struct CommitRow {
    pub id: String,
    pub short: String,
    pub title: String,
    pub author: String,
    pub age: String,
    pub utc: String,
    pub href: String,
}

pub fn commit_row(head: &Head, c: &kura_view::CommitInfo, now: i64) -> CommitRow {
    CommitRow {
        short: c.id.chars().take(10).collect(),
        href: format!("{}/commit/{}", head.base, c.id),
        title: c.title.clone(),
        author: c.author_name.clone(),
        age: age(c.committer_time, now),
        utc: utc(c.committer_time),
        id: c.id.clone(),
    }
}

pub struct EntryRow {
    pub name: String,
    pub href: String,
    pub icon: &'static str,
    pub size: String,
    pub last: Option<CommitRow>,
}

fn entry_rows(
    head: &Head,
    dir: &str,
    entries: Vec<kura_view::TreeEntry>,
    now: i64,
) -> Vec<EntryRow> {
    entries
        .into_iter()
        .map(|e| {
            let path = if dir.is_empty() {
                e.name.clone()
            } else {
                format!("{dir}/{}", e.name)
            };
            let (kind, icon) = match e.kind {
                EntryKind::Dir => ("tree", "dir"),
                EntryKind::Submodule => ("tree", "submodule"),
                EntryKind::Symlink => ("blob", "link"),
                EntryKind::File | EntryKind::Exec => ("blob", "file"),
            };
            // A submodule is a commit of another repository: nothing to open here.
            let href = match e.kind {
                EntryKind::Submodule => String::new(),
                _ => format!("{}/{kind}/{}/{}", head.base, head.rev, encode_path(&path)),
            };
            EntryRow {
                href,
                icon,
                size: e.size.map(render::size).unwrap_or_default(),
                last: e.last_commit.as_ref().map(|c| commit_row(head, c, now)),
                name: e.name,
            }
        })
        .collect()
}

pub struct PushRow {
    pub pusher: String,
    pub age: String,
    pub utc: String,
    pub refs: Vec<(String, String)>,
}

pub struct MirrorRow {
    pub label: String,
    pub state: &'static str,
    pub state_class: String,
    pub last_success: String,
    pub last_error: Option<String>,
    pub pending: i64,
    pub lag: String,
}

#[derive(askama::Template)]
#[template(path = "summary.html")]
struct Summary {
    chrome: Chrome,
    head: Head,
    clone_url: String,
    empty: bool,
    branches: Vec<String>,
    tags: Vec<String>,
    rev_missing: bool,
    entries: Vec<EntryRow>,
    parent: Option<String>,
    last_commit: Option<CommitRow>,
    readme: Option<String>,
    pushes: Vec<PushRow>,
    mirrors: Vec<MirrorRow>,
}

fn ref_text(name: &str, old: &str, new: &str) -> (String, String) {
    let short = name
        .strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("refs/tags/"))
        .unwrap_or(name);
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    let what = if zero(old) {
        format!("created at {}", &new[..new.len().min(10)])
    } else if zero(new) {
        "deleted".to_string()
    } else {
        format!(
            "{} → {}",
            &old[..old.len().min(10)],
            &new[..new.len().min(10)]
        )
    };
    (short.to_string(), what)
}

pub async fn summary(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<Response, WebError> {
    if let Some(bare) = name.strip_suffix(".git") {
        return Ok(Redirect::permanent(&format!(
            "/{}/{}",
            render::encode_segment(&ns),
            render::encode_segment(bare)
        ))
        .into_response());
    }
    let mut c = open(&s, v, &ns, &name, "code").await?;
    let now = kura_db::now();
    let default = c.acc.repo.default_branch.clone();
    let cache = s.pages.clone();
    let repo_id = c.acc.repo.id;
    let (empty, refs, root, readme, last_commit, rev_missing) = s
        .ops
        .read(&c.acc.repo, move |r| {
            if r.is_empty()? {
                return Ok((true, Default::default(), None, None, None, false));
            }
            let refs = r.refs(200)?;
            // The default branch, else the newest branch (a repository pushed without it).
            let rev = match r.resolve_rev(&default) {
                Ok(rev) => Some(rev),
                Err(_) => refs
                    .branches
                    .first()
                    .and_then(|b| r.resolve_rev(&b.name).ok()),
            };
            let Some(rev) = rev else {
                return Ok((false, refs, None, None, None, true));
            };
            let entries = folder(r, &cache, repo_id, &rev.commit, "")?;
            let readme = match readme_of(&entries.0) {
                Some(n) => Some((n.clone(), r.blob(&rev.commit, &n, MAX_PAGE_BLOB)?)),
                None => None,
            };
            let last = r.commit(&rev.commit)?.info;
            Ok((false, refs, Some((rev, entries)), readme, Some(last), false))
        })
        .await?;
    let mut entries = Vec::new();
    if let Some((rev, (list, complete))) = root {
        c.at(&rev);
        if !complete {
            finish_later(&s, &c.acc.repo, &rev.commit, "");
        }
        entries = entry_rows(&c.head, "", list.as_ref().clone(), now);
    }
    let readme = readme_html(&s, &c, "", readme).await?;
    let pushes = s
        .ops
        .pushes(&c.acc.repo, None, 5)
        .await?
        .into_iter()
        .map(|p| PushRow {
            pusher: p.pusher,
            age: age(p.created_at, now),
            utc: utc(p.created_at),
            refs: p
                .refs
                .iter()
                .map(|r| ref_text(&r.name, &r.old, &r.new))
                .collect(),
        })
        .collect();
    let mut mirrors = Vec::new();
    for m in s.ops.mirrors_of(&c.acc.repo).await? {
        let st = s.ops.mirror_status(&m).await?;
        let label = if c.head.can_admin {
            m.url.clone()
        } else {
            mirror_kind(&m.url)
        };
        let state = if st.pending == 0 && m.last_error.is_none() {
            "in sync"
        } else if m.last_error.is_some() {
            "failing"
        } else {
            "catching up"
        };
        mirrors.push(MirrorRow {
            label,
            state,
            state_class: state.replace(' ', "-"),
            last_success: m
                .last_success_at
                .map(|t| age(t, now))
                .unwrap_or_else(|| "never".into()),
            last_error: m.last_error.clone(),
            pending: st.pending,
            lag: if st.lag_seconds > 0 {
                kura_proto::format_duration(Duration::from_secs(st.lag_seconds as u64))
            } else {
                String::new()
            },
        });
    }
    let clone_url = format!(
        "{}/{}.git",
        crate::api::base_url(&s, &h),
        encode_path(&c.head.full_name)
    );
    Ok(page(Summary {
        clone_url,
        empty,
        branches: refs.branches.iter().map(|b| b.name.clone()).collect(),
        tags: refs.tags.iter().map(|t| t.name.clone()).collect(),
        rev_missing,
        entries,
        parent: None,
        last_commit: last_commit.map(|l| commit_row(&c.head, &l, now)),
        readme,
        pushes,
        mirrors,
        chrome: c.v.chrome,
        head: c.head,
    }))
}

/// The README among a folder's entries, if any.
fn readme_of(entries: &[kura_view::TreeEntry]) -> Option<String> {
    entries
        .iter()
        .filter(|e| e.kind == EntryKind::File || e.kind == EntryKind::Exec)
        .find(|e| README_NAMES.contains(&e.name.as_str()))
        .map(|e| e.name.clone())
}

/// A README as HTML: Markdown rendered (links resolved from its folder `dir`), else as text;
/// rendered on a reading slot (fenced code is highlighted).
async fn readme_html(
    s: &AppState,
    c: &Ctx,
    dir: &str,
    readme: Option<(String, kura_view::Blob)>,
) -> Result<Option<String>, WebError> {
    let Some((name, b)) = readme else {
        return Ok(None);
    };
    let (base, rev, dir) = (c.head.base.clone(), c.head.rev.clone(), dir.to_string());
    let html = s
        .ops
        .read(&c.acc.repo, move |_| {
            let text = String::from_utf8_lossy(&b.data);
            let lower = name.to_lowercase();
            Ok(if lower.ends_with(".md") || lower.ends_with(".markdown") {
                render::markdown(
                    &text,
                    &LinkBase {
                        repo: &base,
                        rev: &rev,
                        dir: &dir,
                    },
                )
            } else {
                format!("<pre>{}</pre>", render::escape(&text))
            })
        })
        .await?;
    Ok(Some(html))
}

fn mirror_kind(url: &str) -> String {
    if url.contains("codecommit") {
        "CodeCommit mirror".into()
    } else {
        "push mirror".into()
    }
}

#[derive(askama::Template)]
#[template(path = "tree.html")]
struct TreePage {
    chrome: Chrome,
    head: Head,
    path: String,
    crumbs: Vec<(String, String)>,
    parent: Option<String>,
    entries: Vec<EntryRow>,
    readme: Option<String>,
}

pub async fn tree(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, rest)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let mut c = open(&s, v, &ns, &name, "code").await?;
    let now = kura_db::now();
    let cache = s.pages.clone();
    let repo_id = c.acc.repo.id;
    let (rev, path, entries) = s
        .ops
        .read(&c.acc.repo, move |r| {
            let (rev, path) = r.resolve(&rest)?;
            let path = path.trim_end_matches('/').to_string();
            if cache
                .get::<Vec<kura_view::TreeEntry>>(&folder_key(repo_id, &rev.commit, &path))
                .is_none()
                && r.kind_at(&rev.commit, &path)? != EntryKind::Dir
            {
                return Ok((rev, path, None));
            }
            let found = folder(r, &cache, repo_id, &rev.commit, &path)?;
            let readme = match readme_of(&found.0) {
                Some(n) => {
                    let file = if path.is_empty() {
                        n.clone()
                    } else {
                        format!("{path}/{n}")
                    };
                    Some((n, r.blob(&rev.commit, &file, MAX_PAGE_BLOB)?))
                }
                None => None,
            };
            Ok((rev, path, Some((found, readme))))
        })
        .await?;
    c.at(&rev);
    let Some(((entries, complete), readme)) = entries else {
        // A file addressed as a folder: show it as a file.
        return Ok(Redirect::to(&format!(
            "{}/blob/{}/{}",
            c.head.base,
            c.head.rev,
            encode_path(&path)
        ))
        .into_response());
    };
    let parent = (!path.is_empty()).then(|| {
        let up = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        if up.is_empty() {
            format!("{}/tree/{}", c.head.base, c.head.rev)
        } else {
            format!("{}/tree/{}/{}", c.head.base, c.head.rev, encode_path(up))
        }
    });
    if !complete {
        finish_later(&s, &c.acc.repo, &rev.commit, &path);
    }
    let entries = entry_rows(&c.head, &path, entries.as_ref().clone(), now);
    let readme = readme_html(&s, &c, &path, readme).await?;
    Ok(page(TreePage {
        crumbs: crumbs(&c.head, &path),
        parent,
        entries,
        readme,
        path,
        chrome: c.v.chrome.clone(),
        head: c.head,
    }))
}

fn folder_key(repo_id: i64, commit: &str, path: &str) -> String {
    format!("tree:{repo_id}:{commit}:{path}")
}

/// How long a page waits for the last-commit column; what is missing then is finished in the
/// background (see `finish_later`).
const LAST_COMMITS_WAIT_MS: u64 = 300;

/// A folder's entries with their last commits, from the cache or walked within the page's
/// bound. Returns whether every entry got its commit; complete answers are cached.
fn folder(
    r: &kura_view::Viewer,
    cache: &super::PageCache,
    repo_id: i64,
    commit: &str,
    path: &str,
) -> Result<(Arc<Vec<kura_view::TreeEntry>>, bool), kura_view::ViewError> {
    let key = folder_key(repo_id, commit, path);
    if let Some(hit) = cache.get::<Vec<kura_view::TreeEntry>>(&key) {
        return Ok((hit, true));
    }
    let entries = Arc::new(r.tree(commit, path, Some(&limits(LAST_COMMITS_WAIT_MS, 1_000_000)))?);
    let complete = entries.iter().all(|e| e.last_commit.is_some());
    if complete {
        cache.put(key, entries.clone(), folder_weight(&entries));
    }
    Ok((entries, complete))
}

fn folder_weight(entries: &[kura_view::TreeEntry]) -> usize {
    entries
        .iter()
        .map(|e| {
            e.name.len()
                + e.last_commit
                    .as_ref()
                    .map_or(0, |c| c.title.len() + c.author_name.len())
                + 200
        })
        .sum()
}

/// Walks the rest of a long history for a folder's last commits in the background (one walk
/// per folder at a time, bounded), so the next view of the page has the whole column.
fn finish_later(s: &AppState, repo: &kura_db::Repo, commit: &str, path: &str) {
    let key = folder_key(repo.id, commit, path);
    if !s.pages.claim(&key) {
        return;
    }
    let (ops, cache, repo, commit, path) = (
        s.ops.clone(),
        s.pages.clone(),
        repo.clone(),
        commit.to_string(),
        path.to_string(),
    );
    tokio::spawn(async move {
        let c2 = cache.clone();
        let k2 = key.clone();
        let r = ops
            .read(&repo, move |r| {
                let entries =
                    Arc::new(r.tree(&commit, &path, Some(&limits(30_000, 10_000_000)))?);
                c2.put(k2, entries.clone(), folder_weight(&entries));
                Ok(())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "finishing a folder's last commits failed");
        }
        cache.release(&key);
    });
}

#[derive(askama::Template)]
#[template(path = "blob.html")]
struct BlobPage {
    chrome: Chrome,
    head: Head,
    path: String,
    crumbs: Vec<(String, String)>,
    size: String,
    lines: Vec<String>,
    kind: &'static str,
    raw_href: String,
    download_href: String,
    blame_href: String,
    history_href: String,
    markdown: Option<String>,
}

fn image_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit('.').next()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct BlobQuery {
    plain: Option<String>,
}

pub async fn blob(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, rest)): Path<(String, String, String)>,
    Query(q): Query<BlobQuery>,
) -> Result<Response, WebError> {
    let mut c = open(&s, v, &ns, &name, "code").await?;
    let (rev, path, blob) = s
        .ops
        .read(&c.acc.repo, move |r| {
            let (rev, path) = r.resolve(&rest)?;
            if path.is_empty() || r.kind_at(&rev.commit, &path)? == EntryKind::Dir {
                return Ok((rev, path, None));
            }
            let b = r.blob(&rev.commit, &path, MAX_PAGE_BLOB)?;
            Ok((rev, path, Some(b)))
        })
        .await?;
    c.at(&rev);
    let Some(mut b) = blob else {
        return Ok(Redirect::to(&format!(
            "{}/tree/{}/{}",
            c.head.base,
            c.head.rev,
            encode_path(&path)
        ))
        .into_response());
    };
    let file = format!("{}/{}", c.head.rev, encode_path(&path));
    let (kind, lines, markdown) = if image_type(&path).is_some() {
        ("image", Vec::new(), None)
    } else if b.truncated {
        ("large", Vec::new(), None)
    } else if b.binary {
        ("binary", Vec::new(), None)
    } else {
        // Highlighting and Markdown are CPU work: on a reading slot, off the async threads.
        let is_md = path.to_lowercase().ends_with(".md") && q.plain.is_none();
        let (base, rev, cache, repo_id) = (
            c.head.base.clone(),
            c.head.rev.clone(),
            s.pages.clone(),
            c.acc.repo.id,
        );
        let (file, id, data) = (path.clone(), b.id.clone(), std::mem::take(&mut b.data));
        let (lines, md) = s
            .ops
            .read(&c.acc.repo, move |_| {
                let text = String::from_utf8_lossy(&data);
                Ok(if is_md {
                    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let base = LinkBase {
                        repo: &base,
                        rev: &rev,
                        dir,
                    };
                    (Vec::new(), Some(render::markdown(&text, &base)))
                } else {
                    (highlighted(&cache, repo_id, &id, &file, &text), None)
                })
            })
            .await?;
        ("text", lines, md)
    };
    Ok(page(BlobPage {
        crumbs: crumbs(&c.head, &path),
        size: render::size(b.size),
        lines,
        kind,
        raw_href: format!("{}/raw/{file}", c.head.base),
        download_href: format!("{}/raw/{file}?download=1", c.head.base),
        blame_href: format!("{}/blame/{file}", c.head.base),
        history_href: format!("{}/commits/{file}", c.head.base),
        markdown,
        path,
        chrome: c.v.chrome.clone(),
        head: c.head,
    }))
}

/// Highlighted lines of a blob, computed once per repository, blob id and file name (the
/// name picks the language).
fn highlighted(
    cache: &super::PageCache,
    repo_id: i64,
    blob_id: &str,
    path: &str,
    text: &str,
) -> Vec<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let key = format!("hl:{repo_id}:{blob_id}:{name}");
    if let Some(hit) = cache.get::<Vec<String>>(&key) {
        return hit.as_ref().clone();
    }
    let lines = render::highlight_lines(path, text);
    let weight = lines.iter().map(|l| l.len() + 24).sum();
    cache.put(key, Arc::new(lines.clone()), weight);
    lines
}

#[derive(Deserialize)]
pub struct RawQuery {
    download: Option<String>,
}

/// A file as it is. Nothing served here can run script on Kura's origin: text types are
/// `text/plain`, and a sandboxing CSP covers the rest (SVG).
pub async fn raw(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, rest)): Path<(String, String, String)>,
    Query(q): Query<RawQuery>,
) -> Result<Response, WebError> {
    let c = open(&s, v, &ns, &name, "code").await?;
    let (rev, path, id, data) = s
        .ops
        .read(&c.acc.repo, move |r| {
            let (rev, path) = r.resolve(&rest)?;
            let b = r.blob(&rev.commit, &path, 0)?;
            let mut data = Vec::new();
            r.write_blob(&b.id, MAX_RAW_BLOB, &mut data)?;
            Ok((rev, path, b.id, data))
        })
        .await?;
    let file_name = path.rsplit('/').next().unwrap_or("file").to_string();
    let binary = data.iter().take(8000).any(|b| *b == 0);
    let ty = match image_type(&path) {
        Some(t) => t,
        None if binary => "application/octet-stream",
        None => "text/plain; charset=utf-8",
    };
    let mut resp = Response::new(Body::from(data));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox",
        ),
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{id}\"")).unwrap_or(HeaderValue::from_static("\"\"")),
    );
    if rev.kind == RevKind::Commit {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        );
    } else {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    }
    if q.download.is_some() || ty == "application/octet-stream" {
        let ascii = render::file_name(&file_name);
        let disp = format!(
            "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
            render::encode_segment(&file_name)
        );
        if let Ok(v) = HeaderValue::from_str(&disp) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(resp)
}

pub struct BlameRow {
    pub line_no: usize,
    pub html: String,
    /// Set on the first line of a hunk.
    pub commit: Option<CommitRow>,
}

#[derive(askama::Template)]
#[template(path = "blame.html")]
struct BlamePage {
    chrome: Chrome,
    head: Head,
    path: String,
    crumbs: Vec<(String, String)>,
    rows: Vec<BlameRow>,
    blob_href: String,
    note: Option<String>,
}

pub async fn blame(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, rest)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let mut c = open(&s, v, &ns, &name, "code").await?;
    let now = kura_db::now();
    let (cache, repo_id) = (s.pages.clone(), c.acc.repo.id);
    let (rev, path, text_file, lines, hunks) = s
        .ops
        .read(&c.acc.repo, move |r| {
            let (rev, path) = r.resolve(&rest)?;
            let b = r.blob(&rev.commit, &path, MAX_PAGE_BLOB)?;
            if b.binary || b.truncated {
                return Ok((rev, path, false, Vec::new(), Vec::new()));
            }
            let hunks = r.blame(&rev.commit, &path, &limits(5_000, 100_000))?;
            let text = String::from_utf8_lossy(&b.data);
            let lines = highlighted(&cache, repo_id, &b.id, &path, &text);
            Ok((rev, path, true, lines, hunks))
        })
        .await?;
    c.at(&rev);
    let note = (!text_file).then(|| "Blame is shown for text files up to 1 MiB only.".to_string());
    let mut starts = std::collections::HashMap::new();
    for h in &hunks {
        starts.insert(h.start_line as usize, commit_row(&c.head, &h.commit, now));
    }
    let rows = lines
        .into_iter()
        .enumerate()
        .map(|(i, html)| BlameRow {
            line_no: i + 1,
            html,
            commit: starts.remove(&(i + 1)),
        })
        .collect();
    let blob_href = format!("{}/blob/{}/{}", c.head.base, c.head.rev, encode_path(&path));
    Ok(page(BlamePage {
        crumbs: crumbs(&c.head, &path),
        rows,
        blob_href,
        note,
        path,
        chrome: c.v.chrome.clone(),
        head: c.head,
    }))
}
