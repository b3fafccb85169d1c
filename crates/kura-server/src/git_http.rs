//! Smart HTTP: `info/refs`, `git-upload-pack`, `git-receive-pack`. Each request runs one
//! `git ... --stateless-rpc` child, streaming the body in and its output out; the child dies
//! with the response (client gone: response dropped: child killed).

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use futures_util::{stream, Stream, StreamExt};
use kura_db::Role;
use kura_git::hook::POLICY_ENV;
use kura_git::policy::{ProtectedBranch, PushPolicy};
use kura_git::report::ReportScanner;
use kura_git::{GitService, ServiceRequest};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout};
use tokio::sync::oneshot;
use tokio_util::io::{ReaderStream, StreamReader};
use tower_http::decompression::RequestDecompressionLayer;
use tracing::Instrument;

use crate::access::{self, Caller, Denied, RepoAccess};
use crate::app::AppState;
use crate::error::HttpError;
use crate::limits::{self, Activity, Ended, Supervision};
use crate::names::RepoPath;
use crate::post_receive::PushFile;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{ns}/{repo}/info/refs", get(info_refs))
        .route(
            "/{ns}/{repo}/git-upload-pack",
            post(upload_pack).layer(RequestDecompressionLayer::new()),
        )
        .route(
            "/{ns}/{repo}/git-receive-pack",
            post(receive_pack).layer(RequestDecompressionLayer::new()),
        )
}

#[derive(serde::Deserialize)]
struct InfoRefsQuery {
    service: Option<String>,
}

fn need(service: GitService) -> Role {
    match service {
        GitService::UploadPack => Role::Read,
        GitService::ReceivePack => Role::Write,
    }
}

/// The repository, if the caller may run `service` on it, through the one access decision;
/// refusals are plain text, which git prints as `remote:` lines.
async fn authorize(
    state: &AppState,
    caller: &Caller,
    ns: &str,
    repo: &str,
    service: GitService,
) -> Result<RepoAccess, HttpError> {
    let path = RepoPath::new(ns, repo).map_err(HttpError::bad_request)?;
    access::require(
        &state.ops,
        state.config.allow_anonymous_read,
        caller,
        &path,
        need(service),
    )
    .await
    .map_err(|d| refusal(d, service))
}

fn refusal(d: Denied, service: GitService) -> HttpError {
    let verb = match service {
        GitService::UploadPack => "reading",
        GitService::ReceivePack => "pushing",
    };
    match d {
        // Missing and hidden look the same: a challenge for anonymous callers, 404 for users.
        Denied::Hidden { anonymous: true, .. } => HttpError::unauthorized(
            "authentication required: give your user name and password or token",
        ),
        Denied::Hidden { .. } => {
            HttpError::not_found("repository not found: check the URL, or ask its owner for access")
        }
        Denied::SignIn { repo, .. } => HttpError::unauthorized(format!(
            "{verb} {repo} needs you to sign in: give your user name and password or token"
        )),
        Denied::Scope { repo, scope, need } => HttpError::forbidden(format!(
            "this token has scope {scope} but {verb} {repo} needs {need}; create a token with --scope {need}"
        )),
        Denied::Role { repo, role, need } => HttpError::forbidden(format!(
            "you have {role} access to {repo} but {verb} needs {need}; ask an admin of {repo} for {need} access"
        )),
        Denied::SiteAdmin | Denied::NamespaceAdmin { .. } => {
            HttpError::forbidden(format!("{verb} is not allowed for you here"))
        }
        Denied::Failed(e) => e.into(),
    }
}

/// `Git-Protocol` reaches git only when it passes `kura_proto::git_protocol`.
fn git_protocol(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    let Some(v) = headers.get("git-protocol") else {
        return Ok(None);
    };
    kura_proto::git_protocol(v.as_bytes())
        .map(|p| Some(p.to_string()))
        .ok_or_else(|| {
            HttpError::bad_request("invalid Git-Protocol header: expected e.g. version=2")
        })
}

async fn info_refs(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    Query(q): Query<InfoRefsQuery>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let service = q
        .service
        .as_deref()
        .and_then(GitService::from_name)
        .ok_or_else(|| {
            HttpError::forbidden(
                "Kura speaks only Git's smart HTTP protocol: use git 1.7 or later (?service=git-upload-pack or git-receive-pack)",
            )
        })?;
    let started = std::time::Instant::now();
    let access = authorize(&state, &caller, &ns, &repo, service).await?;
    stage("access decided", started);
    let protocol = git_protocol(&headers)?;
    let v2 = service == GitService::UploadPack
        && protocol
            .as_deref()
            .is_some_and(|p| p.split(':').any(|i| i == "version=2"));
    let req = ServiceRequest {
        repo_id: access.repo.id,
        service,
        advertise_refs: true,
        protocol: protocol.as_deref(),
        hook_env: Vec::new(),
        report_push: false,
        push_log: None,
    };
    let output = start_git(&state, &req, Box::new(()), None, None, None).await?;
    // Protocol v2 starts with the capability advertisement; v0 with the service banner.
    let preamble = if v2 {
        Bytes::new()
    } else {
        let line = format!("# service={}\n", service.name());
        Bytes::from(format!("{:04x}{line}0000", line.len() + 4))
    };
    let body = stream::once(async move { Ok::<_, io::Error>(preamble) }).chain(output);
    Ok(git_response(
        &format!("application/x-{}-advertisement", service.name()),
        Body::from_stream(body),
    ))
}

async fn upload_pack(
    state: State<AppState>,
    path: Path<(String, String)>,
    caller: Caller,
    req: Request,
) -> Result<Response, HttpError> {
    rpc(state, path, caller, req, GitService::UploadPack).await
}

async fn receive_pack(
    state: State<AppState>,
    path: Path<(String, String)>,
    caller: Caller,
    req: Request,
) -> Result<Response, HttpError> {
    rpc(state, path, caller, req, GitService::ReceivePack).await
}

async fn rpc(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    caller: Caller,
    req: Request,
    service: GitService,
) -> Result<Response, HttpError> {
    let (parts, body) = req.into_parts();
    let access = authorize(&state, &caller, &ns, &repo, service).await?;
    let expected = format!("application/x-{}-request", service.name());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != expected {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type {expected}; this URL is for git clients"),
        ));
    }
    let protocol = git_protocol(&parts.headers)?;
    let body = if service == GitService::UploadPack {
        match crate::git_cache::answer(&state, &caller, &access, protocol.as_deref(), body).await? {
            crate::git_cache::Answer::Served(resp) => return Ok(resp),
            crate::git_cache::Answer::Git(body) => body,
        }
    } else {
        body
    };
    let mut hook_env = Vec::new();
    let mut guard = None;
    let mut report_push = false;
    let mut push_file = None;
    let mut session_note = None;
    if service == GitService::ReceivePack {
        let policy = push_policy(&state, &caller, &access).await?;
        let json = serde_json::to_string(&policy).map_err(HttpError::internal)?;
        hook_env.push((POLICY_ENV, json));
        // Every push reaches the push log through post-receive: pushes to repositories with
        // mirrors report to us and wait for them; the others write a file we read at the end.
        let protocol_name = match protocol.as_deref() {
            Some(p) if p.split(':').any(|i| i == "version=1") => "http/v1",
            _ => "http/v0",
        };
        let pusher = caller
            .actor()
            .map(|a| a.user.name.clone())
            .unwrap_or_default();
        let session = if state.ops.has_delivery_targets(&access.repo).await? {
            let (token, note, session) = state.hooks.open(
                state.ops.clone(),
                access.repo.clone(),
                pusher,
                protocol_name,
            );
            if let Some(url) = state.hook_url.get() {
                hook_env.push(("KURA_HOOK_URL", url.clone()));
            }
            hook_env.push(("KURA_HOOK_TOKEN", token));
            report_push = true;
            session_note = Some(note);
            Some(session)
        } else {
            push_file = Some(PushFile::new(
                state.ops.clone(),
                access.repo.clone(),
                pusher,
                protocol_name,
            ));
            None
        };
        // One push at a time per repository in this process: the hook then sees current refs.
        let lock = state.push_locks.lock(access.repo.id).await;
        let dirty = crate::maintenance::MarkOnDrop {
            state: state.clone(),
            repo_id: access.repo.id,
        };
        guard = Some(Box::new((lock, session, dirty)) as Box<dyn std::any::Any + Send>);
    }
    tracing::info!(
        repo = %access.repo.full_name(),
        service = service.name(),
        user = caller.name(),
        role = %access.role,
        "git request"
    );
    // pre-receive notes the accepted updates for both: the push file, or the session's
    // fallback when post-receive never reports.
    let push_log = push_file
        .as_ref()
        .map(|f: &PushFile| f.path.clone())
        .or(session_note);
    let req = ServiceRequest {
        repo_id: access.repo.id,
        service,
        advertise_refs: false,
        protocol: protocol.as_deref(),
        hook_env,
        report_push,
        push_log: push_log.as_deref(),
    };
    let hold = guard.unwrap_or_else(|| Box::new(()));
    let output = start_git(&state, &req, hold, Some(body), push_file, None).await?;
    Ok(git_response(
        &format!("application/x-{}-result", service.name()),
        Body::from_stream(output),
    ))
}

/// Starts the request's git child within the limits (a slot of the server and of the
/// repository, or `503`), feeds it the request body, and hands it to a supervisor that kills
/// it when the request stalls, runs too long or the client goes away; `hold` (the push lock)
/// is released when git exits. Returns git's output as the response body.
pub(crate) async fn start_git(
    state: &AppState,
    req: &ServiceRequest<'_>,
    hold: Box<dyn std::any::Any + Send>,
    body: Option<Body>,
    push_file: Option<PushFile>,
    exited: Option<oneshot::Sender<bool>>,
) -> Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static, HttpError> {
    let Some(permit) = state.git_slots.acquire(req.repo_id).await else {
        tracing::warn!(
            service = req.service.name(),
            "refused: too many git processes"
        );
        let mut e = HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Kura is running as many git processes as it may for this repository or server; try again in a few seconds",
        )
        .code("busy");
        e.retry_after = Some(5);
        return Err(e);
    };
    let spawning = std::time::Instant::now();
    let mut child = spawn(state, req)?;
    stage("git started", spawning);
    let activity = Activity::new();
    let stdout = child.stdout.take();
    if let (Some(mut stdin), Some(body)) = (child.stdin.take(), body) {
        let seen = activity.clone();
        let data = body.into_data_stream().map(move |chunk| {
            seen.touch();
            chunk.map_err(io::Error::other)
        });
        let mut reader = StreamReader::new(data);
        tokio::spawn(
            async move {
                if let Err(e) = tokio::io::copy(&mut reader, &mut stdin).await {
                    tracing::info!(error = %e, "request body ended early");
                }
            }
            .in_current_span(),
        );
    }
    let (gone, client_gone) = oneshot::channel();
    let c = &state.config;
    let exit = limits::supervise(
        child,
        Supervision {
            idle_timeout: c.git_idle_timeout,
            max_duration: c.git_max_duration,
            activity: activity.clone(),
            hold: Box::new((permit, hold)),
        },
        client_gone,
    );
    Ok(child_output(
        state,
        stdout,
        Watch {
            exit,
            gone,
            activity,
        },
        push_file,
        req.service,
        exited,
    ))
}

/// The supervisor's side of a child: its word on the exit, the client-gone signal, and the
/// activity clock.
struct Watch {
    exit: oneshot::Receiver<(Ended, io::Result<ExitStatus>)>,
    gone: oneshot::Sender<()>,
    activity: Activity,
}

async fn push_policy(
    state: &AppState,
    caller: &Caller,
    access: &RepoAccess,
) -> Result<PushPolicy, HttpError> {
    let protected = state
        .ops
        .protections(&access.repo)
        .await?
        .into_iter()
        .map(|p| ProtectedBranch {
            pattern: p.pattern,
            allow_push: p.allow_push,
        })
        .collect();
    Ok(PushPolicy {
        repo: access.repo.full_name(),
        pusher: caller
            .actor()
            .map(|a| a.user.name.clone())
            .unwrap_or_default(),
        pusher_is_admin: access.role >= Role::Admin,
        default_branch: access.repo.default_branch.clone(),
        protected,
    })
}

fn spawn(state: &AppState, req: &ServiceRequest<'_>) -> Result<Child, HttpError> {
    let mut child = state.ops.git_service(req).spawn().map_err(|e| {
        HttpError::internal(format!("cannot start git {}: {e}", req.service.name()))
    })?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(
            async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(git_stderr = %line, "git said");
                }
            }
            .in_current_span(),
        );
    }
    Ok(child)
}

/// The child's stdout as a body stream. At EOF the supervisor's word on the exit is logged;
/// if the stream is dropped first (client gone), `gone` tells the supervisor to kill git.
fn child_output(
    state: &AppState,
    stdout: Option<ChildStdout>,
    watch: Watch,
    push_file: Option<PushFile>,
    service: GitService,
    exited: Option<oneshot::Sender<bool>>,
) -> impl Stream<Item = io::Result<Bytes>> {
    let Watch {
        exit,
        gone,
        activity,
    } = watch;
    let metrics = state.metrics.clone();
    let started = std::time::Instant::now();
    let span = tracing::Span::current();
    let out = match stdout {
        Some(s) => ReaderStream::with_capacity(s, 64 * 1024).left_stream(),
        None => stream::empty().right_stream(),
    };
    struct State<S> {
        out: S,
        exit: oneshot::Receiver<(Ended, io::Result<ExitStatus>)>,
        _gone: oneshot::Sender<()>,
        activity: Activity,
        span: tracing::Span,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        push_file: Option<PushFile>,
        report: Option<ReportScanner>,
        exited: Option<oneshot::Sender<bool>>,
        first: bool,
    }
    stream::unfold(
        Some(State {
            out,
            exit,
            _gone: gone,
            activity,
            span,
            metrics,
            report: push_file.as_ref().map(|_| ReportScanner::new()),
            push_file,
            exited,
            first: true,
        }),
        move |st| async move {
            let mut st = st?;
            match st.out.next().await {
                Some(item) => {
                    if std::mem::take(&mut st.first) {
                        let _e = st.span.enter();
                        stage("first byte", started);
                    }
                    st.activity.touch();
                    if let (Some(r), Ok(bytes)) = (st.report.as_mut(), &item) {
                        r.feed(bytes);
                    }
                    Some((item, Some(st)))
                }
                None => {
                    let eof = std::time::Instant::now();
                    let ended = tokio::time::timeout(Duration::from_secs(60), &mut st.exit).await;
                    {
                        let _e = st.span.enter();
                        stage("output ended", started);
                        stage("git exited", eof);
                    }
                    if let Some(tx) = st.exited.take() {
                        let _ = tx
                            .send(matches!(&ended, Ok(Ok((Ended::Exited, Ok(s)))) if s.success()));
                    }
                    log_exit(&st.span, service, ended);
                    // git has exited and its report-status has passed: log the push without
                    // holding up the pusher.
                    if let Some(f) = st.push_file.take() {
                        let confirmed = st.report.take().and_then(|r| r.updated());
                        tokio::spawn(f.record(confirmed));
                    }
                    st.metrics
                        .observe_git(service.name(), started.elapsed().as_secs_f64());
                    None
                }
            }
        },
    )
}

/// A debug line per stage of a request (`KURA_LOG=kura_server=debug`): `us` since `since`.
/// `bench/run` reads them for its per-stage breakdown; free when debug is off.
fn stage(name: &'static str, since: std::time::Instant) {
    tracing::debug!(
        stage = name,
        us = since.elapsed().as_micros() as u64,
        "request stage"
    );
}

type Exit = Result<
    Result<(Ended, io::Result<ExitStatus>), oneshot::error::RecvError>,
    tokio::time::error::Elapsed,
>;

fn log_exit(span: &tracing::Span, service: GitService, ended: Exit) {
    let _e = span.enter();
    let name = service.name();
    match ended {
        Ok(Ok((Ended::Exited, Ok(s)))) if s.success() => {}
        Ok(Ok((Ended::Exited, Ok(s)))) => {
            tracing::warn!(service = name, status = %s, "git exited with an error")
        }
        Ok(Ok((why, _))) if why != Ended::Exited => {
            tracing::warn!(service = name, reason = ?why, "git was stopped")
        }
        Ok(Ok((_, Err(e)))) => tracing::warn!(service = name, error = %e, "cannot wait for git"),
        Ok(Err(_)) => tracing::warn!(service = name, "git's supervisor ended without a word"),
        Err(_) => tracing::warn!(
            service = name,
            "git did not exit after its output ended; stopped"
        ),
        _ => {}
    }
}

pub(crate) fn git_response(content_type: &str, body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
