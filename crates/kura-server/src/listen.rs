//! Accepting connections, bounded: at most `max_connections` at once (beyond, a short `503`
//! and the connection is closed at once), a request's headers must arrive within
//! `http_header_timeout` (which also ends idle keep-alive connections), the open-files limit
//! is raised to the hard limit at start, and on shutdown in-flight requests get the grace.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Raises the soft open-files limit to the hard one and says so; returns the limit in force.
pub fn raise_open_files() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    match rlimit::increase_nofile_limit(hard) {
        Ok(now) if now > soft => {
            tracing::info!(from = soft, to = now, "raised the open-files limit");
            Some(now)
        }
        Ok(now) => {
            tracing::info!(
                limit = now,
                "the open-files limit is already at its hard limit"
            );
            Some(now)
        }
        Err(e) => {
            tracing::warn!(error = %e, limit = soft, "cannot raise the open-files limit");
            Some(soft)
        }
    }
}

pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// within the grace.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // e.g. EMFILE: keep serving the connections we have, try again shortly.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Small responses (ref advertisements, pkt-line flushes) must not wait for delayed ACKs.
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp, peer));
            continue;
        };
        let app = app.clone();
        let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, client = %peer, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(grace = ?limits.grace, "shutting down: no new connections, waiting for requests in flight");
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?limits.grace, "requests still running after the grace period; stopping them");
    }
}

/// Beyond the connection limit: a short answer and the connection closed, without reading.
async fn refuse(mut tcp: TcpStream, peer: SocketAddr) {
    tracing::warn!(client = %peer, "refused a connection: max_connections reached");
    const BODY: &str = "Kura has as many connections open as it may; try again in a moment\n";
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        // Read what the client sent first: closing with unread data would reset the
        // connection and lose the answer.
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await;
        let _ = tcp.write_all(resp.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}
