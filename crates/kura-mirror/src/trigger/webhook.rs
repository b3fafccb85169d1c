//! Sending a webhook: HTTPS with the system roots plus `ca_bundle` (private CAs), no proxy,
//! no redirects, bounded time and answer size, and every address checked against the allow
//! list as it is connected to (a resolver that refuses forbidden addresses), so a name that
//! resolves elsewhere after the trigger was added is still refused.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;

use super::allow::AllowList;

/// At most this much of an answer is read and kept in the delivery log.
const EXCERPT: usize = 512;

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow: Arc<AllowList>,
}

/// What the receiver answered.
pub struct Answer {
    pub status: u16,
    pub excerpt: String,
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

struct Guarded {
    allow: Arc<AllowList>,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .collect();
            let mut refused = None;
            let ok: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match allow.permits(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if ok.is_empty() {
                let why = refused.unwrap_or_else(|| format!("{host} has no address"));
                return Err(why.into());
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

impl WebhookClient {
    pub fn new(
        allow: AllowList,
        ca_bundle: Option<&Path>,
        timeout: Duration,
    ) -> Result<WebhookClient, String> {
        let allow = Arc::new(allow);
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .user_agent(concat!("Kura/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Guarded {
                allow: allow.clone(),
            }));
        if let Some(path) = ca_bundle {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "cannot read the CA bundle {}: {e}; check ca_bundle (KURA_CA_BUNDLE)",
                    path.display()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                format!(
                    "the CA bundle {} is not PEM certificates: {e}",
                    path.display()
                )
            })?;
            if certs.is_empty() {
                return Err(format!(
                    "the CA bundle {} holds no certificate",
                    path.display()
                ));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b.build().map_err(|e| format!("cannot set up HTTPS: {e}"))?;
        Ok(WebhookClient { http, allow })
    }

    /// The checks a URL must pass before anything is sent (and when a trigger is added):
    /// http(s), a host, no user name or password, and a host or address the list allows.
    pub async fn check_url(&self, url: &str) -> Result<url::Url, String> {
        let u = parse_url(url)?;
        let host = u.host_str().unwrap_or_default().to_string();
        let port = u.port_or_known_default().unwrap_or(443);
        let literal = host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
        match literal {
            Some(ip) => self.allow.permits(&host, ip)?,
            None => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}; check the URL"))?
                    .collect();
                let mut last = None;
                if !addrs
                    .iter()
                    .any(|a| match self.allow.permits(&host, a.ip()) {
                        Ok(()) => true,
                        Err(e) => {
                            last = Some(e);
                            false
                        }
                    })
                {
                    return Err(last.unwrap_or_else(|| format!("{host} has no address")));
                }
            }
        }
        Ok(u)
    }

    /// POSTs `body`; `Ok` for any answer (the caller decides what counts), `Err` when there
    /// was none (refused, unreachable, TLS, timeout).
    pub async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<Answer, String> {
        let u = self.check_url(url).await?;
        let mut req = self
            .http
            .post(u)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let mut resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| describe(e.without_url(), url))?;
        let status = resp.status().as_u16();
        let mut excerpt = Vec::new();
        // Only the start of the answer: a receiver cannot make Kura read without end.
        while excerpt.len() < EXCERPT {
            match resp.chunk().await {
                Ok(Some(c)) => excerpt.extend_from_slice(&c),
                _ => break,
            }
        }
        excerpt.truncate(EXCERPT);
        let excerpt: String = String::from_utf8_lossy(&excerpt)
            .chars()
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect();
        Ok(Answer {
            status,
            excerpt: excerpt.trim().to_string(),
        })
    }
}

pub fn parse_url(url: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(url).map_err(|e| {
        format!("{url:?} is not a URL ({e}): write e.g. https://jenkins.corp.example/generic-webhook-trigger/invoke")
    })?;
    if u.scheme() != "https" && u.scheme() != "http" {
        return Err(format!(
            "webhooks are http:// or https:// URLs, not {}://",
            u.scheme()
        ));
    }
    if u.host_str().unwrap_or_default().is_empty() {
        return Err("the webhook URL has no host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "put no user name or password in the webhook URL: give the trigger a secret instead, and Kura signs each request (X-Kura-Signature-256)"
                .into(),
        );
    }
    Ok(u)
}

/// The URL as listings show it: scheme, host, port and the first path segment; the rest of
/// the path and the query are `…` (tokens live there: Jenkins' `?token=`, Mattermost's and
/// Slack's `/hooks/KEY`).
pub fn display_url(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return "(unreadable URL)".into();
    };
    let mut out = origin(&u);
    let mut segments = u
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty());
    if let Some(first) = segments.next() {
        out.push('/');
        out.push_str(first);
        if segments.next().is_some() || u.query().is_some() {
            out.push_str("/…");
        }
    } else if u.query().is_some() {
        out.push_str("/…");
    }
    out
}

/// `scheme://host[:port]`: all that errors and logs say of a webhook's URL.
fn origin(u: &url::Url) -> String {
    match u.port() {
        Some(p) => format!("{}://{}:{p}", u.scheme(), u.host_str().unwrap_or("")),
        None => format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")),
    }
}

/// The innermost cause, which names what went wrong (our resolver's refusal, TLS, refused).
fn describe(e: reqwest::Error, url: &str) -> String {
    let mut cur: &dyn std::error::Error = &e;
    let mut msgs = vec![];
    while let Some(next) = cur.source() {
        msgs.push(next.to_string());
        cur = next;
    }
    let root = msgs.last().cloned().unwrap_or_else(|| e.to_string());
    let shown = url::Url::parse(url)
        .map(|u| origin(&u))
        .unwrap_or_else(|_| "the webhook".into());
    if e.is_timeout() {
        format!("{shown}: no answer in time")
    } else if e.is_connect() {
        format!("{shown}: cannot connect: {root}")
    } else {
        format!("{shown}: {root}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_github_style_hmac() {
        // HMAC-SHA256("It's a Secret to Everybody", "Hello, World!") from GitHub's docs.
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn urls_are_checked_and_shown_without_secrets() {
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("https://u:p@x/")
            .unwrap_err()
            .contains("no user name"));
        assert!(parse_url("not a url").is_err());
        assert_eq!(
            display_url("https://jenkins.corp/generic-webhook-trigger/invoke?token=abc"),
            "https://jenkins.corp/generic-webhook-trigger/…"
        );
        assert_eq!(
            display_url("https://mm.corp/hooks/k3y"),
            "https://mm.corp/hooks/…"
        );
        assert_eq!(display_url("https://h/?token=t"), "https://h/…");
        assert_eq!(
            display_url("http://127.0.0.1:8080/hook"),
            "http://127.0.0.1:8080/hook"
        );
    }
}
