//! The application: shared state, the router with its layers, health endpoints, and `serve`
//! with graceful shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::OwnedMutexGuard;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::{parse_net, Config};
use crate::error::HttpError;
use crate::netguard::NetGuard;
use crate::ops::Ops;
use crate::passwords::Passwords;
use crate::post_receive::HookSessions;
use crate::throttle::Throttle;

#[derive(Clone)]
pub struct AppState {
    pub ops: Ops,
    pub config: Arc<Config>,
    pub throttle: Arc<Throttle>,
    pub passwords: Arc<Passwords>,
    pub git_slots: Arc<crate::limits::GitSlots>,
    pub net: Arc<NetGuard>,
    pub push_locks: Arc<PushLocks>,
    pub hooks: Arc<HookSessions>,
    /// `http://ADDR` of our own listener, for hooks; set once bound.
    pub hook_url: Arc<OnceLock<String>>,
    pub dirty: Arc<crate::maintenance::Dirty>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// What the pages computed per object id.
    pub pages: Arc<crate::web::PageCache>,
    /// Recent successful directory sign-ins.
    pub remembered: Arc<crate::directory::Remembered>,
    pub directory_health: Arc<crate::directory::Health>,
    /// Clone packs on local disk; `None`: off.
    pub pack_cache: Option<Arc<crate::pack_cache::PackCache>>,
    /// Set at SIGTERM: `/readyz` fails from then on.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    /// This process among replicas sharing the folder (PostgreSQL); set once it listens.
    pub replicas: Arc<OnceLock<Arc<crate::replicas::Replicas>>>,
}

impl AppState {
    pub fn new(ops: Ops, config: Config) -> AppState {
        let nets = |v: &[String]| v.iter().filter_map(|c| parse_net(c).ok()).collect();
        AppState {
            throttle: Arc::new(Throttle::new(config.auth_failure_window)),
            git_slots: Arc::new(crate::limits::GitSlots::new(
                config.git_max_processes,
                config.git_max_processes_per_repo,
                config.git_queue_wait,
            )),
            passwords: Arc::new(Passwords::new(
                match config.auth_concurrency {
                    0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                    n => n,
                },
                config.auth_queue_wait,
                config.auth_cache_ttl,
            )),
            net: Arc::new(NetGuard::new(
                nets(&config.allowed_cidrs),
                nets(&config.trusted_proxies),
            )),
            push_locks: Arc::new(PushLocks::default()),
            hooks: Arc::new(HookSessions::default()),
            hook_url: Arc::new(OnceLock::new()),
            dirty: Arc::new(crate::maintenance::Dirty::default()),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            pages: Arc::new(crate::web::PageCache::default()),
            remembered: Arc::new(crate::directory::Remembered::new(
                config.ldap.as_ref().map_or(Duration::ZERO, |l| l.cache_ttl),
            )),
            directory_health: Arc::default(),
            pack_cache: None,
            stopping: Arc::default(),
            replicas: Arc::default(),
            config: Arc::new(config),
            ops,
        }
    }
}

/// One async lock per repository, for pushes within this process.
#[derive(Default)]
pub struct PushLocks {
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

impl PushLocks {
    pub async fn lock(&self, repo_id: i64) -> OwnedMutexGuard<()> {
        let m = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            // Drop locks nobody holds or waits for, so the map stays small.
            map.retain(|_, m| Arc::strong_count(m) > 1);
            map.entry(repo_id).or_default().clone()
        };
        m.lock_owned().await
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(crate::git_http::routes())
        .merge(crate::post_receive::routes())
        .route("/metrics", get(crate::metrics::metrics))
        .nest("/api/v1", crate::api::routes())
        .merge(crate::web::routes())
        .fallback(|| async {
            HttpError::not_found(
                "not found: Kura serves its pages at /, git at /NAMESPACE/REPOSITORY.git and its API under /api/v1",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::replicas::route,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::netguard::guard,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_bad_request_id))
        .with_state(state)
}

/// A client's `x-request-id` is kept only when it is a plain token (letters, digits, `.-_:`,
/// at most 64): anything else is replaced by a fresh id, so nobody can forge log lines.
async fn drop_bad_request_id<B>(mut req: Request<B>) -> Request<B> {
    let ok = req.headers().get(&REQUEST_ID).is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 64
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
    });
    if !ok {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

/// A directory outage does not make the server unready (local users, tokens and anonymous
/// reads still work; leaving the load balancer would stop them too): it is named in the body.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let directory = state.directory_health.line(&state.ops).unwrap_or_default();
    if state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: stopping (SIGTERM); requests are still served until the shutdown blackout ends, then the ones in flight finish\n".to_string(),
        );
    }
    match state.ops.unready().await {
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n{directory}"),
        ),
        None => (StatusCode::OK, format!("ready\n{directory}")),
    }
}

/// Binds, prints `kura: listening on http://ADDR` on stdout, serves until SIGTERM/SIGINT, then
/// lets in-flight requests finish within the configured grace.
pub async fn serve(state: AppState) -> std::io::Result<()> {
    crate::listen::raise_open_files();
    let listener = tokio::net::TcpListener::bind(&state.config.listen)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot listen on {}: {e}; choose another address with --listen or KURA_LISTEN",
                    state.config.listen
                ),
            )
        })?;
    let addr = listener.local_addr()?;
    state.config.note_listening(addr);
    let grace = state.config.shutdown_grace;
    let mut hook_addr = addr;
    if hook_addr.ip().is_unspecified() {
        hook_addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let _ = state.hook_url.set(format!("http://{hook_addr}"));
    let heartbeat = match crate::replicas::Replicas::start(&state.ops, &state.config, addr).await {
        Ok(Some((r, beat))) => {
            let _ = state.replicas.set(r);
            Some(beat)
        }
        Ok(None) => None,
        Err(e) => {
            return Err(std::io::Error::other(format!(
                "cannot register this server among the replicas in the database: {e}; check that PostgreSQL (database_url) answers and that Kura's migrations ran (kura serve runs them at start)"
            )))
        }
    };
    let workers = state.ops.spawn_worker();
    let maintenance = crate::maintenance::spawn(state.clone());
    let directory_sync = state
        .config
        .ldap
        .as_ref()
        .filter(|_| state.ops.directory().is_some())
        .map(|l| crate::directory::spawn_sync(state.ops.clone(), l.sync_interval));
    // Repositories the pages opened are closed once idle (their packs stay mapped while open).
    // ... and so are password checks' working memories (about 19 MiB each).
    let sweeper = {
        let ops = state.ops.clone();
        let passwords = state.passwords.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
            loop {
                tick.tick().await;
                ops.close_idle_repositories();
                passwords.release_idle(std::time::Duration::from_secs(60));
            }
        })
    };
    let lag_log = crate::metrics::spawn_lag_log(state.ops.clone());
    let limits = crate::listen::Limits {
        max_connections: state.config.max_connections,
        header_timeout: state.config.http_header_timeout,
        grace,
    };
    let stopping = state.stopping.clone();
    let blackout = state.config.shutdown_blackout;
    let window = state.config.shared_cache_window;
    let leases = state.replicas.get().map(|_| state.ops.clone());
    let ops = state.ops.clone();
    let app = router(state);
    let signal = shutdown_signal(stopping, blackout);
    // A replica keeps answering what it changed last until its write leases run out (others
    // forward those repositories to it meanwhile), one cache window at most.
    let shutdown = async move {
        signal.await;
        if let Some(ops) = leases {
            let deadline = tokio::time::Instant::now() + window;
            while let Ok(Some(until)) = ops.own_leases_until().await {
                if tokio::time::Instant::now() >= deadline || !ops.other_replicas_alive().await {
                    break;
                }
                tracing::info!(
                    in_ms = until - kura_db::now_ms(),
                    "stopping: still serving the repositories this replica changed last, until its write leases run out"
                );
                tokio::time::sleep(Duration::from_millis(
                    (until - kura_db::now_ms()).clamp(100, 1000) as u64,
                ))
                .await;
            }
        }
    };
    println!("kura: listening on http://{addr}");
    tracing::info!(%addr, "listening");
    crate::listen::serve(listener, app, limits, shutdown).await;
    for w in workers {
        w.abort();
    }
    if let Some(h) = heartbeat {
        h.abort();
        if let Err(e) = ops.unregister_replica().await {
            tracing::warn!(error = %e, "cannot remove this replica's registration");
        }
    }
    sweeper.abort();
    lag_log.abort();
    if let Some(d) = directory_sync {
        d.abort();
    }
    if let Some(m) = maintenance {
        m.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves `blackout` after SIGTERM or SIGINT (at once on a second signal). From the signal
/// on, `/readyz` fails so the load balancer stops sending, while new requests are still served:
/// a push's requests that come after its first must not find the port closed. The handlers are
/// installed here, before the server says it listens, so that a signal that comes right after
/// start drains instead of killing the process.
fn shutdown_signal(
    stopping: Arc<std::sync::atomic::AtomicBool>,
    blackout: Duration,
) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                if blackout.is_zero() {
                    return;
                }
                tracing::info!(
                    blackout = %kura_proto::format_duration(blackout),
                    "stopping: /readyz fails now; new requests are served until the blackout ends (a second SIGTERM ends it now)"
                );
                tokio::select! {
                    _ = tokio::time::sleep(blackout) => {},
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT; stop with SIGKILL");
                std::future::pending::<()>().await
            }
        }
    }
}
