//! This process as one of several replicas on one shared folder and PostgreSQL database:
//! registration with a heartbeat, the write lease of the repositories it changes, and the
//! forwarding of a repository's requests to the replica that changed it within the cache window
//! (see ARCHITECTURE.md, "Several replicas on one shared folder").

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kura_db::{now_ms, Lease};

use crate::app::AppState;
use crate::error::HttpError;
use crate::netguard::ClientIp;
use crate::ops::{Ops, REPLICA_DEAD_AFTER_MS};
use crate::RepoPath;

const HEARTBEAT: Duration = Duration::from_secs(2);
/// Rows of replicas silent for a day are deleted (checked every this many heartbeats).
const FORGET_EVERY: u32 = 1800;

/// Headers of a request one replica forwards to another: the cluster key (read from the
/// database), and the client's address as the first replica saw it.
pub const PEER_KEY: HeaderName = HeaderName::from_static("kura-peer-key");
pub const PEER_CLIENT: HeaderName = HeaderName::from_static("kura-peer-client");

pub struct Replicas {
    window: Duration,
    key: String,
    ops: Ops,
    client: Client<HttpConnector, Body>,
}

/// Where a request about one repository is answered.
enum Route {
    /// Here; for a write, `lease` keeps this replica's write lease until the answer ends.
    Local(Option<WriteLease>),
    Forward(String),
    /// The holder is gone; its lease runs out at this time (ms).
    Wait(i64),
}

impl Replicas {
    /// Registers this process (PostgreSQL only) and starts its heartbeat.
    pub async fn start(
        ops: &Ops,
        config: &crate::Config,
        addr: SocketAddr,
    ) -> crate::ops::Result<Option<(Arc<Replicas>, tokio::task::JoinHandle<()>)>> {
        if !ops.shares_database() {
            return Ok(None);
        }
        let url = match config.peer_url.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", reachable(addr)),
        };
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        ops.register_replica(&url, &host).await?;
        let key = ops.cluster_key().await?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        tracing::info!(id = ops.replica_id(), %url, "registered as a replica");
        let r = Arc::new(Replicas {
            window: config.shared_cache_window,
            key,
            ops: ops.clone(),
            client,
        });
        let beat = {
            let ops = ops.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HEARTBEAT);
                for beat in 0u32.. {
                    tick.tick().await;
                    match ops.replica_heartbeat().await {
                        Ok(true) => {}
                        Ok(false) => {
                            let _ = ops.register_replica(&url, &host).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot send the replica heartbeat"),
                    }
                    if beat % FORGET_EVERY == 0 {
                        let _ = ops.forget_silent_replicas(24 * 3600 * 1000).await;
                    }
                }
            })
        };
        Ok(Some((r, beat)))
    }

    /// Whether a request carries the cluster key (it comes from another replica).
    pub fn from_peer(&self, headers: &HeaderMap) -> bool {
        use subtle::ConstantTimeEq;
        headers
            .get(&PEER_KEY)
            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(self.key.as_bytes())))
    }

    fn route_of(&self, lease: Option<Lease>) -> Route {
        let Some(l) = lease else {
            return Route::Local(None);
        };
        if l.holder == self.ops.replica_id() {
            return Route::Local(None);
        }
        match l.holder_replica {
            Some(p) if now_ms() - p.heartbeat_at_ms < REPLICA_DEAD_AFTER_MS => {
                Route::Forward(p.url)
            }
            _ => Route::Wait(l.expires_at_ms),
        }
    }

    async fn route(&self, path: &RepoPath, write: bool) -> crate::ops::Result<Route> {
        if !write {
            return Ok(self.route_of(self.ops.live_lease(path).await?));
        }
        let Some(repo) = self.ops.find_repo(path).await? else {
            return Ok(Route::Local(None));
        };
        let id = repo.id;
        match self.ops.take_write_lease(id, self.until()).await? {
            Ok(()) => Ok(Route::Local(Some(WriteLease::hold(self, id)))),
            Err(l) => Ok(self.route_of(Some(l))),
        }
    }

    fn until(&self) -> i64 {
        now_ms() + self.window.as_millis() as i64
    }

    /// The write lease of repository `id` for work that is not a request (maintenance):
    /// `None` when another replica holds it.
    pub async fn lease_for(self: &Arc<Self>, id: i64) -> crate::ops::Result<Option<WriteLease>> {
        Ok(match self.ops.take_write_lease(id, self.until()).await? {
            Ok(()) => Some(WriteLease::hold(self, id)),
            Err(_) => None,
        })
    }

    /// Sends the request to the replica at `to` and streams its answer back.
    async fn forward(&self, to: &str, req: Request) -> Response {
        let (mut parts, body) = req.into_parts();
        let client_ip = parts.extensions.get::<ClientIp>().map(|c| c.0);
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri: Uri = match format!("{to}{path}").parse() {
            Ok(u) => u,
            Err(_) => return HttpError::internal(format!("bad peer URL {to}")).into_response(),
        };
        strip_hop_headers(&mut parts.headers);
        parts.headers.remove(header::HOST);
        if let Ok(v) = HeaderValue::from_str(&self.key) {
            parts.headers.insert(PEER_KEY, v);
        }
        if let Some(ip) = client_ip.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
            parts.headers.insert(PEER_CLIENT, ip);
        }
        let mut out = hyper::Request::new(body);
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = uri;
        *out.headers_mut() = parts.headers;
        match self.client.request(out).await {
            Ok(resp) => {
                let (mut rparts, rbody) = resp.into_parts();
                strip_hop_headers(&mut rparts.headers);
                Response::from_parts(rparts, Body::new(rbody))
            }
            Err(e) => {
                tracing::warn!(peer = %to, error = %e, "cannot forward to the replica that holds the repository");
                unavailable(
                    "this repository was just changed through another Kura replica, which does not answer; retry in a minute",
                    Duration::from_secs(5),
                )
            }
        }
    }
}

/// The address peers can reach `addr` at: an unspecified IP becomes this host's own (the
/// address of the interface a route to another private network would use; nothing is sent).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if !addr.ip().is_unspecified() {
        return addr;
    }
    let ip = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("10.255.255.254:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, addr.port())
}

fn strip_hop_headers(h: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        h.remove(name);
    }
    h.remove("keep-alive");
}

fn unavailable(msg: &str, retry: Duration) -> Response {
    let mut r = HttpError::new(StatusCode::SERVICE_UNAVAILABLE, msg.to_string()).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// A replica's hold on a repository's write lease while it changes the repository: renewed
/// while held, and on drop moved to one cache window from then.
pub struct WriteLease {
    renew: tokio::task::JoinHandle<()>,
    ops: Ops,
    id: i64,
    window: Duration,
}

impl WriteLease {
    fn hold(r: &Replicas, id: i64) -> WriteLease {
        let (ops, window) = (r.ops.clone(), r.window);
        let renew = tokio::spawn({
            let ops = ops.clone();
            async move {
                let every = (window / 4).max(Duration::from_millis(250));
                loop {
                    tokio::time::sleep(every).await;
                    let until = now_ms() + window.as_millis() as i64;
                    match ops.renew_write_lease(id, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(
                                repo_id = id,
                                "lost the repository's write lease while changing it"
                            );
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(repo_id = id, error = %e, "cannot renew the repository's write lease")
                        }
                    }
                }
            }
        });
        WriteLease {
            renew,
            ops,
            id,
            window,
        }
    }
}

impl Drop for WriteLease {
    fn drop(&mut self) {
        self.renew.abort();
        let (ops, id) = (self.ops.clone(), self.id);
        let until = now_ms() + self.window.as_millis() as i64;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = ops.renew_write_lease(id, until).await;
            });
        }
    }
}

/// The repository a request is about and whether the request may change its files, for the
/// routes that read or change a repository's folder: Git, the pages and the API under
/// `repos/`. Only a request with credentials (a header or the pages' cookie) counts as a
/// change: anonymous callers never write, and must not be able to pin a repository's lease.
fn repo_of(method: &Method, path: &str, signed_in: bool) -> Option<(RepoPath, bool)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (ns, name, rest) = if segs.first() == Some(&"api") {
        if segs.get(1) != Some(&"v1") || segs.get(2) != Some(&"repos") || segs.len() < 5 {
            return None;
        }
        (segs[3], segs[4], &segs[5..])
    } else {
        if segs.len() < 2 || segs[0].is_empty() || segs[0].starts_with('-') {
            return None;
        }
        (segs[0], segs[1], &segs[2..])
    };
    let path = RepoPath::new(ns, name).ok()?;
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || rest.last() == Some(&"git-upload-pack");
    Some((path, signed_in && !reads))
}

/// Middleware: answers a request about a repository here, or forwards it to the replica that
/// changed the repository within the cache window. Requests from another replica are never
/// forwarded again.
pub async fn route(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(replicas) = state.replicas.get().cloned() else {
        return next.run(req).await;
    };
    let signed_in = req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().contains_key(header::COOKIE);
    let Some((path, write)) = repo_of(req.method(), req.uri().path(), signed_in) else {
        return next.run(req).await;
    };
    let from_peer = replicas.from_peer(req.headers());
    let route = match replicas.route(&path, write).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look up the repository's write lease");
            return unavailable(
                "the database does not answer; retry shortly",
                Duration::from_secs(5),
            );
        }
    };
    match route {
        Route::Local(lease) => {
            let resp = next.run(req).await;
            match lease {
                None => resp,
                // Held until the answer is sent: a push changes the repository while its
                // response streams.
                Some(lease) => resp.map(|body| {
                    Body::from_stream(body.into_data_stream().map(move |chunk| {
                        let _held = &lease;
                        chunk
                    }))
                }),
            }
        }
        Route::Forward(_) if from_peer => unavailable(
            "this repository is being handed between Kura replicas; retry in a few seconds",
            Duration::from_secs(2),
        ),
        Route::Forward(to) => replicas.forward(&to, req).await,
        Route::Wait(until) => {
            let secs = ((until - now_ms()).max(0) / 1000 + 1) as u64;
            unavailable(
                &format!(
                    "{path} was just changed through a Kura replica that stopped; it is served again in {secs} s (retry then)"
                ),
                Duration::from_secs(secs),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_their_repository() {
        let (g, p) = (Method::GET, Method::POST);
        let at = |m: &Method, path: &str, signed_in: bool| {
            repo_of(m, path, signed_in).map(|(r, w)| (r.to_string(), w))
        };
        assert_eq!(
            at(&g, "/alice/app.git/info/refs", true),
            Some(("alice/app".into(), false))
        );
        assert_eq!(
            at(&p, "/alice/app.git/git-upload-pack", true),
            Some(("alice/app".into(), false))
        );
        assert_eq!(
            at(&p, "/alice/App.GIT/git-receive-pack", true),
            Some(("alice/App".into(), true))
        );
        assert_eq!(
            at(&p, "/alice/app.git/git-receive-pack", false),
            Some(("alice/app".into(), false))
        );
        assert_eq!(
            at(&p, "/api/v1/repos/alice/app/maintain", true),
            Some(("alice/app".into(), true))
        );
        assert_eq!(at(&g, "/api/v1/users", true), None);
        assert_eq!(at(&g, "/-/static/app.css", false), None);
        assert_eq!(at(&g, "/healthz", false), None);
        assert_eq!(at(&g, "/alice", false), None);
        assert_eq!(at(&g, "/alice/..", false), None);
    }
}
