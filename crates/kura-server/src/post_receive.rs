//! After a push: the `post-receive` hook posts the ref updates here; the push is recorded in
//! the push log and a delivery queued for every target (mirror) in one transaction (the
//! outbox), then we wait, bounded, for the mirrors and answer the lines the pusher reads as
//! `remote:`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use kura_db::{Mirror, PushedRef, Queued, Repo};
use kura_git::policy::RefUpdate;
use rand::distributions::{Alphanumeric, DistString};

use crate::app::AppState;
use crate::ops::Ops;

pub const TOKEN_HEADER: &str = "x-kura-hook-token";

/// What a push's hook may report, keyed by a one-time token handed to that push only.
#[derive(Default)]
pub struct HookSessions {
    map: Mutex<HashMap<String, Session>>,
}

#[derive(Clone)]
struct Session {
    repo: Repo,
    pusher: String,
    protocol: &'static str,
    /// Where `pre-receive` notes the updates it accepted (removed once recorded).
    note: std::path::PathBuf,
    /// `PENDING`, `RECORDING` (the report is being written) or `RECORDED`; shared with the
    /// guard, which must not record a push twice.
    state: Arc<AtomicU8>,
}

const PENDING: u8 = 0;
const RECORDING: u8 = 1;
const RECORDED: u8 = 2;

/// Removes the session when the push's response ends. If the push was never recorded (the
/// client went away before post-receive reported, or recording failed), it is recorded from
/// `pre-receive`'s note of the updates, keeping those the refs confirm (so triggers get their
/// events), and its mirrors get a run queued anyway: runs mirror the whole state, so an extra
/// one is harmless, a missing one not.
pub struct SessionGuard {
    sessions: Arc<HookSessions>,
    token: String,
    ops: Ops,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let session = self
            .sessions
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.token);
        let Some(s) = session.filter(|s| s.state.load(Ordering::SeqCst) != RECORDED) else {
            return;
        };
        let ops = self.ops.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                // A killed receive-pack may have been updating refs: let it settle first.
                tokio::time::sleep(Duration::from_secs(1)).await;
                // A report being written when the client left decides first (bounded wait).
                for _ in 0..150 {
                    if s.state.load(Ordering::SeqCst) != RECORDING {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                if s.state.load(Ordering::SeqCst) == RECORDED {
                    return;
                }
                record_file(&ops, &s.repo, &s.pusher, s.protocol, &s.note, None).await;
                if let Err(e) = ops.sync_all_mirrors(s.repo.id).await {
                    tracing::error!(error = %e, repo = %s.repo.full_name(), "cannot queue a mirror run after an unreported push");
                }
            });
        }
    }
}

impl HookSessions {
    pub fn open(
        self: &Arc<Self>,
        ops: Ops,
        repo: Repo,
        pusher: String,
        protocol: &'static str,
    ) -> (String, std::path::PathBuf, SessionGuard) {
        let token = Alphanumeric.sample_string(&mut rand::thread_rng(), 40);
        let note = ops.push_log_path(repo.id);
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(
            token.clone(),
            Session {
                repo,
                pusher,
                protocol,
                note: note.clone(),
                state: Arc::new(AtomicU8::new(PENDING)),
            },
        );
        let guard = SessionGuard {
            sessions: self.clone(),
            token: token.clone(),
            ops,
        };
        (token, note, guard)
    }

    fn get(&self, token: &str) -> Option<Session> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// A push to a repository without delivery targets: `pre-receive` notes the accepted updates
/// in a file (no extra process, no call back to the server), and when the push's response
/// ends they are logged, keeping those that receive-pack's report-status confirmed (`ok REF`).
/// Without a readable report, or dropped early (the client went away), the repository's refs
/// decide instead: refs may have moved although the client left.
pub struct PushFile {
    pub path: std::path::PathBuf,
    ops: Ops,
    repo: Repo,
    pusher: String,
    protocol: &'static str,
    done: bool,
}

impl PushFile {
    pub fn new(ops: Ops, repo: Repo, pusher: String, protocol: &'static str) -> PushFile {
        PushFile {
            path: ops.push_log_path(repo.id),
            ops,
            repo,
            pusher,
            protocol,
            done: false,
        }
    }

    /// Logs the noted updates that `confirmed` names (`None`: check the refs).
    pub async fn record(mut self, confirmed: Option<BTreeSet<String>>) {
        self.done = true;
        record_file(
            &self.ops,
            &self.repo,
            &self.pusher,
            self.protocol,
            &self.path,
            confirmed,
        )
        .await;
    }
}

impl Drop for PushFile {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (ops, repo, pusher, protocol, path) = (
            self.ops.clone(),
            self.repo.clone(),
            std::mem::take(&mut self.pusher),
            self.protocol,
            self.path.clone(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                // A killed receive-pack may have been updating refs: let it settle first.
                tokio::time::sleep(Duration::from_secs(1)).await;
                record_file(&ops, &repo, &pusher, protocol, &path, None).await;
            });
        }
    }
}

async fn record_file(
    ops: &Ops,
    repo: &Repo,
    pusher: &str,
    protocol: &str,
    path: &std::path::Path,
    confirmed: Option<BTreeSet<String>>,
) {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        // No file: pre-receive accepted nothing (refused, or nothing to do).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::error!(error = %e, repo = %repo.full_name(), "cannot read the push's noted updates; the push is not in the log");
            return;
        }
    };
    let _ = tokio::fs::remove_file(path).await;
    let mut refs = parse_updates(&text);
    match confirmed {
        Some(ok) => refs.retain(|r| ok.contains(&r.name)),
        None => {
            let names: Vec<String> = refs.iter().map(|r| r.name.clone()).collect();
            match ops.ref_values(repo, &names).await {
                Ok(now) => refs.retain(|r| match now.get(&r.name) {
                    Some(oid) => *oid == r.new,
                    None => kura_git::policy::is_zero(&r.new),
                }),
                Err(e) => {
                    tracing::error!(error = %e, repo = %repo.full_name(), "cannot confirm the push's updates; the push is not in the log");
                    return;
                }
            }
        }
    }
    if refs.is_empty() {
        return;
    }
    if let Err(e) = ops.record_push(repo, pusher, protocol, &refs).await {
        tracing::error!(error = %e, repo = %repo.full_name(), "cannot record the push in the log");
    }
}

/// The pusher recorded for a push recovered from a note (the note does not name one).
pub const RECOVERED_PUSHER: &str = "(recovered after a restart)";

/// Records pushes whose process died between receive-pack updating the refs and the push
/// being recorded: their notes are older than any push can run (`age`). The refs decide which
/// updates count, as for a client that went away; triggers then get their events.
pub async fn recover_orphaned_notes(ops: &Ops, age: Duration) {
    for (repo_id, path) in ops.claim_orphaned_push_notes(age) {
        match ops.repo_by_id(repo_id).await {
            Ok(Some(repo)) => {
                tracing::warn!(repo = %repo.full_name(), "recording a push whose process stopped before recording it");
                record_file(ops, &repo, RECOVERED_PUSHER, "http", &path, None).await;
            }
            Ok(None) => {
                let _ = tokio::fs::remove_file(&path).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot recover a push note now; it is tried again later");
                // Back under its own name, so that a later sweep finds it again.
                if let Some(orig) = path
                    .to_str()
                    .and_then(|p| p.rsplit_once(".recovering-"))
                    .map(|(o, _)| o.to_string())
                {
                    let _ = tokio::fs::rename(&path, orig).await;
                }
            }
        }
    }
}

fn parse_updates(text: &str) -> Vec<PushedRef> {
    text.lines()
        .filter_map(RefUpdate::parse)
        .map(|u| PushedRef {
            name: u.name,
            old: u.old,
            new: u.new,
        })
        .collect()
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/-/internal/post-receive", post(post_receive))
}

async fn post_receive(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(Session {
        repo,
        pusher,
        protocol,
        note,
        state: recording,
    }) = state.hooks.get(token)
    else {
        return (StatusCode::FORBIDDEN, "unknown or finished push\n").into_response();
    };
    // Only one report per push: a second post of the same token is refused.
    if recording
        .compare_exchange(PENDING, RECORDING, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return (StatusCode::CONFLICT, "this push is already recorded\n").into_response();
    }
    let refs = parse_updates(&body);
    let started = Instant::now();
    let jobs = match state.ops.record_push(&repo, &pusher, protocol, &refs).await {
        Ok(j) => j,
        Err(e) => {
            recording.store(PENDING, Ordering::SeqCst);
            tracing::error!(error = %e, repo = %repo.full_name(), "cannot record the push");
            return (
                StatusCode::OK,
                "Kura could not record this push yet (database error); it is recorded when this push ends, or mirrors catch up at the next push (kura mirror sync)\n",
            )
                .into_response();
        }
    };
    recording.store(RECORDED, Ordering::SeqCst);
    let _ = tokio::fs::remove_file(&note).await;
    let (events, mirror_jobs): (Vec<Queued>, Vec<Queued>) =
        jobs.into_iter().partition(|q| q.trigger);
    let mut lines = Vec::new();
    if !events.is_empty() {
        lines.push(triggers_line(&state, &repo, &events).await);
    }
    if !mirror_jobs.is_empty() {
        lines.extend(wait_and_report(&state, &repo, &mirror_jobs, started).await);
    }
    if lines.is_empty() {
        return (StatusCode::OK, String::new()).into_response();
    }
    (StatusCode::OK, lines.join("\n") + "\n").into_response()
}

/// One line for all the triggers a push queued (not one per trigger): how many events, and
/// the first few triggers by kind and host.
async fn triggers_line(state: &AppState, repo: &Repo, events: &[Queued]) -> String {
    let mut ids: Vec<i64> = events.iter().map(|q| q.target_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut names = Vec::new();
    for id in ids.iter().take(3) {
        names.push(
            state
                .ops
                .trigger_label(*id)
                .await
                .unwrap_or_else(|_| format!("trigger {id}")),
        );
    }
    if ids.len() > 3 {
        names.push(format!("{} more", ids.len() - 3));
    }
    format!(
        "queued {} event{} for {} trigger{} ({}); deliveries: {}/{}/settings/triggers",
        events.len(),
        if events.len() == 1 { "" } else { "s" },
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        names.join(", "),
        state.config.public_url(),
        repo.full_name()
    )
}

/// Waits up to `mirror_wait` for the jobs, then describes each mirror's state.
async fn wait_and_report(
    state: &AppState,
    repo: &Repo,
    jobs: &[Queued],
    started: Instant,
) -> Vec<String> {
    let wait = state.config.mirror_wait;
    let deadline = started + wait;
    let mut finished = state.ops.runs_finished();
    let mut settled: HashMap<i64, String> = HashMap::new();
    loop {
        for &q in jobs {
            if settled.contains_key(&q.target_id) {
                continue;
            }
            if let Some(line) = settled_line(state, repo, q, started).await {
                settled.insert(q.target_id, line);
            }
        }
        if settled.len() == jobs.len() || wait.is_zero() || Instant::now() >= deadline {
            break;
        }
        // Woken by a local run finishing; the short sleep covers runs in other processes.
        tokio::select! {
            _ = finished.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
    let mut lines = Vec::new();
    for q in jobs {
        match settled.remove(&q.target_id) {
            Some(l) => lines.push(l),
            None => {
                let url = mirror_url(state, q.target_id).await;
                let why = if wait.is_zero() {
                    "queued".to_string()
                } else {
                    format!("still running after {}", humantime::format_duration(wait))
                };
                lines.push(format!(
                    "mirror to {url} {why}; see kura mirror status {}",
                    repo.full_name()
                ));
            }
        }
    }
    lines
}

async fn mirror_url(state: &AppState, id: i64) -> String {
    match state.ops.mirror_by_id(id).await {
        Ok(Some(m)) => m.url,
        _ => format!("mirror {id}"),
    }
}

/// `Some(line)` once the job is delivered, or a failed run covered it.
async fn settled_line(
    state: &AppState,
    repo: &Repo,
    q: Queued,
    started: Instant,
) -> Option<String> {
    let done = state.ops.delivered(q).await.ok()?;
    let m: Mirror = state.ops.mirror_by_id(q.target_id).await.ok()??;
    let job_id = q.delivery_id;
    if done {
        return Some(format!(
            "mirrored to {} ({}) in {:.1} s",
            m.url,
            m.last_summary.as_deref().unwrap_or("up to date"),
            started.elapsed().as_secs_f64()
        ));
    }
    if m.last_attempt_job >= job_id {
        if let Some(err) = &m.last_error {
            return Some(format!(
                "mirror to {} queued ({err}); retrying, see kura mirror status {}",
                m.url,
                repo.full_name()
            ));
        }
    }
    None
}
