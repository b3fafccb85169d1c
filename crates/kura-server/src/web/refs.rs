//! Branches and tags, and archives of a revision.

use std::io::Write;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use kura_view::ArchiveFormat;

use super::render::{self, encode_path};
use super::repo::{commit_row, open, CommitRow, Head};
use super::{page, Chrome, Visitor, WebError};
use crate::app::AppState;

pub struct BranchRow {
    pub name: String,
    pub href: String,
    pub default: bool,
    pub last: CommitRow,
    /// (ahead, behind) of the default branch, when counted within the bound.
    pub divergence: Option<(usize, usize)>,
    pub compare_href: String,
}

#[derive(askama::Template)]
#[template(path = "branches.html")]
struct BranchesPage {
    chrome: Chrome,
    head: Head,
    branches: Vec<BranchRow>,
}

pub async fn branches(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let c = open(&s, v, &ns, &name, "branches").await?;
    let default = c.acc.repo.default_branch.clone();
    let now = kura_db::now();
    let list = s
        .ops
        .read(&c.acc.repo, move |r| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            let refs = r.refs(500)?;
            let mut out = Vec::new();
            for b in refs.branches {
                // Counting stops for the whole page after a second; the rest show no counts.
                let div = if b.name == default || std::time::Instant::now() > deadline {
                    None
                } else {
                    r.ahead_behind(&default, &b.name, 20_000).unwrap_or(None)
                };
                out.push((b, div));
            }
            Ok(out)
        })
        .await?;
    let branches = list
        .into_iter()
        .map(|(b, divergence)| BranchRow {
            href: format!("{}/tree/{}", c.head.base, encode_path(&b.name)),
            default: b.name == c.acc.repo.default_branch,
            last: commit_row(&c.head, &b.commit, now),
            compare_href: format!(
                "{}/compare/{}...{}",
                c.head.base,
                encode_path(&c.acc.repo.default_branch),
                encode_path(&b.name)
            ),
            divergence,
            name: b.name,
        })
        .collect();
    Ok(page(BranchesPage {
        chrome: c.v.chrome,
        head: c.head,
        branches,
    }))
}

pub struct TagRow {
    pub name: String,
    pub href: String,
    pub last: CommitRow,
    pub tar_href: String,
    pub zip_href: String,
}

#[derive(askama::Template)]
#[template(path = "tags.html")]
struct TagsPage {
    chrome: Chrome,
    head: Head,
    tags: Vec<TagRow>,
}

pub async fn tags(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let c = open(&s, v, &ns, &name, "tags").await?;
    let now = kura_db::now();
    let refs = s.ops.read(&c.acc.repo, |r| r.refs(500)).await?;
    let tags = refs
        .tags
        .into_iter()
        .map(|t| TagRow {
            href: format!("{}/tree/{}", c.head.base, encode_path(&t.name)),
            last: commit_row(&c.head, &t.commit, now),
            tar_href: format!("{}/archive/{}.tar.gz", c.head.base, encode_path(&t.name)),
            zip_href: format!("{}/archive/{}.zip", c.head.base, encode_path(&t.name)),
            name: t.name,
        })
        .collect();
    Ok(page(TagsPage {
        chrome: c.v.chrome,
        head: c.head,
        tags,
    }))
}

/// Sends what the blocking archive writer produces as the response body, chunk by chunk. A
/// client that stops reading (or an archive that takes too long) ends the writing, so an
/// archive never holds a reading slot for long.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    rt: tokio::runtime::Handle,
    until: std::time::Instant,
}

/// How long one chunk may wait for the client, and how long a whole archive may take.
const ARCHIVE_STALL: std::time::Duration = std::time::Duration::from_secs(30);
const ARCHIVE_MAX: std::time::Duration = std::time::Duration::from_secs(10 * 60);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let gone = || {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away or stopped reading",
            )
        };
        if std::time::Instant::now() > self.until {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the archive took too long",
            ));
        }
        let chunk = Ok(bytes::Bytes::copy_from_slice(buf));
        match self
            .rt
            .block_on(tokio::time::timeout(ARCHIVE_STALL, self.tx.send(chunk)))
        {
            Ok(Ok(())) => Ok(buf.len()),
            _ => Err(gone()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `/archive/REF.tar.gz` or `/archive/REF.zip`: the tree of REF under `NAME-REF/`.
pub async fn archive(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, file)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let c = open(&s, v, &ns, &name, "code").await?;
    let (rev, format, ext) = if let Some(r) = file.strip_suffix(".tar.gz") {
        (r.to_string(), ArchiveFormat::TarGz, "tar.gz")
    } else if let Some(r) = file.strip_suffix(".zip") {
        (r.to_string(), ArchiveFormat::Zip, "zip")
    } else {
        return Err(WebError::bad_request("Archives are REF.tar.gz or REF.zip."));
    };
    // Resolve first, so a missing revision is a page, not a broken download.
    let resolved = s
        .ops
        .read(&c.acc.repo, {
            let rev = rev.clone();
            move |r| r.resolve_rev(&rev)
        })
        .await?;
    let label = render::file_name(&format!("{}-{}", c.acc.repo.name, rev.replace('/', "-")));
    let Ok(permit) = s.pages.archives.clone().try_acquire_owned() else {
        return Err(WebError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Kura is building as many archives as it builds at once; try again in a minute (or clone the repository).",
        ));
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let prefix = format!("{label}/");
    let commit = resolved.commit.clone();
    let ops = s.ops.clone();
    let repo = c.acc.repo.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::spawn(async move {
        let _permit = permit;
        let err_tx = tx.clone();
        let r = ops
            .read(&repo, move |r| {
                let until = std::time::Instant::now() + ARCHIVE_MAX;
                let mut w =
                    std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter { tx, rt, until });
                r.archive(&commit, format, &prefix, &mut w)?;
                w.flush()
                    .map_err(|e| kura_view::ViewError::Git(e.to_string()))
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "archive failed");
            let _ = err_tx
                .send(Err(std::io::Error::other(
                    "the archive could not be completed",
                )))
                .await;
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if ext == "zip" {
            "application/zip"
        } else {
            "application/gzip"
        }),
    );
    if let Ok(d) = HeaderValue::from_str(&format!("attachment; filename=\"{label}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    Ok(resp)
}
