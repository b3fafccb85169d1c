//! Who is calling: the client address (the peer, or `X-Forwarded-For` when the peer is a
//! trusted proxy) and the optional allow-list of source networks.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::app::AppState;
use crate::error::HttpError;

/// The address the request is attributed to; inserted into request extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

pub struct NetGuard {
    allowed: Vec<IpNet>,
    trusted: Vec<IpNet>,
}

impl NetGuard {
    pub fn new(allowed: Vec<IpNet>, trusted: Vec<IpNet>) -> NetGuard {
        NetGuard { allowed, trusted }
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&canonical(ip)))
    }

    /// Walks `X-Forwarded-For` from the right, skipping trusted proxies; the first untrusted
    /// hop is the client. Without a trusted peer the header is ignored (anyone can forge it).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusted(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .map(canonical)
            .collect();
        hops.iter()
            .rev()
            .find(|ip| !self.trusted(**ip))
            .copied()
            .unwrap_or(peer)
    }

    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|n| n.contains(&canonical(ip)))
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let mut ip = state.net.client_ip(peer.ip(), req.headers());
    // A request another replica forwarded names the client it came from.
    if let Some(r) = state.replicas.get() {
        if r.from_peer(req.headers()) {
            if let Some(c) = req
                .headers()
                .get(&crate::replicas::PEER_CLIENT)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<IpAddr>().ok())
            {
                ip = c;
            }
        }
    }
    let path = req.uri().path();
    // Health probes come from the load balancer; internal calls carry a one-time push token.
    let health = path == "/healthz" || path == "/readyz" || path.starts_with("/-/internal/");
    if !health && !state.net.allowed(ip) {
        tracing::warn!(client = %ip, "refused: address not in allowed_cidrs");
        return HttpError::forbidden(format!(
            "your address {ip} is not allowed to reach this Kura server; ask its administrator to add your network to allowed_cidrs"
        ))
        .into_response();
    }
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        crate::config::parse_net(s).unwrap()
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let g = NetGuard::new(vec![net("10.0.0.0/8")], vec![net("127.0.0.1/32")]);
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 10.1.2.3".parse().unwrap());
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            g.client_ip(local, &h),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        let other: IpAddr = "192.168.1.1".parse().unwrap();
        assert_eq!(g.client_ip(other, &h), other);
        assert!(g.allowed("10.1.2.3".parse().unwrap()));
        assert!(!g.allowed(local));
        assert!(NetGuard::new(vec![], vec![]).allowed(local));
    }
}
