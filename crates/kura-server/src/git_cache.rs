//! Where an upload-pack request meets the pack cache (`pack_cache`): clone requests are
//! answered from it, everything else goes on to git with its body intact.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::{stream, StreamExt};
use kura_git::{GitService, ServiceRequest};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::access::{Caller, RepoAccess};
use crate::app::AppState;
use crate::error::HttpError;
use crate::git_http::{git_response, start_git};
use crate::pack_cache::{Lookup, PackCache, Verdict};

/// Clone requests are small (one line per wanted ref: 6 000 refs are 300 KB); longer bodies
/// are fetches with many `have` lines or something else, and go to git without waiting for
/// their end. A `have` line seen on the way ends the wait early.
const MAX_CLONE_REQUEST: usize = 512 * 1024;

const CONTENT_TYPE: &str = "application/x-git-upload-pack-result";

pub enum Answer {
    Served(Response),
    /// Not for the cache: git answers, from this body.
    Git(Body),
}

pub async fn answer(
    state: &AppState,
    caller: &Caller,
    access: &RepoAccess,
    protocol: Option<&str>,
    body: Body,
) -> Result<Answer, HttpError> {
    let Some(cache) = state.pack_cache.clone() else {
        return Ok(Answer::Git(body));
    };
    let request = match read_prefix(body, state.config.git_idle_timeout).await? {
        Prefix::Whole(b) => b,
        Prefix::Partial(body) => {
            state.metrics.pack_cache("none");
            return Ok(Answer::Git(body));
        }
    };
    let Some(shape) = kura_proto::upload_request::clone_request_key(&request) else {
        state.metrics.pack_cache("none");
        return Ok(Answer::Git(Body::from(request)));
    };
    let repo_id = access.repo.id;
    let point = match state.ops.clone_point(repo_id).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "pack cache: cannot read the repository's refs; serving without the cache");
            state.metrics.pack_cache("bypass");
            return Ok(Answer::Git(Body::from(request)));
        }
    };
    let key = PackCache::key(repo_id, &point.refs, protocol, &shape);
    let (result, reader) = match cache.lookup(key, point.pack_bytes) {
        Lookup::Hit(r) => ("hit", r),
        Lookup::Follow(r) => ("follow", r),
        Lookup::Bypass(why) => {
            tracing::debug!(why, "pack cache: not caching this clone");
            state.metrics.pack_cache("bypass");
            return Ok(Answer::Git(Body::from(request)));
        }
        Lookup::Produce(producer) => {
            let reader = match producer.reader() {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "pack cache: cannot read back a new file; serving without the cache");
                    state.metrics.pack_cache("bypass");
                    return Ok(Answer::Git(Body::from(request)));
                }
            };
            let req = ServiceRequest {
                repo_id,
                service: GitService::UploadPack,
                advertise_refs: false,
                protocol,
                hook_env: Vec::new(),
                report_push: false,
                push_log: None,
            };
            let (exited_tx, exited) = oneshot::channel();
            let output = start_git(
                state,
                &req,
                Box::new(()),
                Some(Body::from(request)),
                None,
                Some(exited_tx),
            )
            .await?;
            let ops = state.ops.clone();
            let refs = point.refs;
            // Published only if git succeeded and the refs did not move while it ran.
            let verdict: Verdict = Box::pin(async move {
                exited.await.unwrap_or(false)
                    && ops.refs_state(repo_id).await.is_ok_and(|now| now == refs)
            });
            tokio::spawn(producer.run(output, verdict).in_current_span());
            ("produce", reader)
        }
    };
    state.metrics.pack_cache(result);
    tracing::info!(
        repo = %access.repo.full_name(),
        service = "git-upload-pack",
        user = caller.name(),
        role = %access.role,
        pack_cache = result,
        "git request"
    );
    Ok(Answer::Served(git_response(
        CONTENT_TYPE,
        Body::from_stream(reader.stream()),
    )))
}

enum Prefix {
    Whole(Bytes),
    /// Longer than a clone request: what was read, then the rest.
    Partial(Body),
}

/// Reads the body up to `MAX_CLONE_REQUEST`; each chunk must come within `idle` (a client that
/// stops sending is dropped as git's supervisor would).
async fn read_prefix(body: Body, idle: Duration) -> Result<Prefix, HttpError> {
    let mut data = body.into_data_stream();
    let mut buf = Vec::new();
    loop {
        let next = if idle.is_zero() {
            data.next().await
        } else {
            tokio::time::timeout(idle, data.next()).await.map_err(|_| {
                let idle = kura_proto::format_duration(idle);
                tracing::warn!(%idle, "git request stopped: the request body stalled before git started");
                HttpError::bad_request(format!("the request body stalled for {idle}; try again"))
            })?
        };
        match next {
            None => return Ok(Prefix::Whole(Bytes::from(buf))),
            Some(Err(e)) => {
                return Err(HttpError::bad_request(format!(
                    "cannot read the request body: {e}"
                )))
            }
            Some(Ok(chunk)) => {
                // Where a `have` pkt-line could start that the last chunk did not show whole.
                let from = buf.len().saturating_sub(8);
                buf.extend_from_slice(&chunk);
                if buf.len() > MAX_CLONE_REQUEST || has_have_line(&buf[from..]) {
                    let head = stream::once(async move { Ok::<_, io::Error>(Bytes::from(buf)) });
                    let rest = data.map(|c| c.map_err(io::Error::other));
                    return Ok(Prefix::Partial(Body::from_stream(head.chain(rest))));
                }
            }
        }
    }
}

/// A `have <id>` pkt-line (SHA-1 or SHA-256): the request negotiates, it is not a clone.
fn has_have_line(bytes: &[u8]) -> bool {
    bytes
        .windows(9)
        .any(|w| w == b"0032have " || w == b"004ahave ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn have_lines_are_seen_across_chunks() {
        assert!(!has_have_line(b"0000"));
        assert!(has_have_line(b"xx0032have 1234"));
        assert!(has_have_line(b"004ahave abcd"));
        assert!(!has_have_line(b"0032want 1234"));
    }
}
