//! Connections: the TLS configuration (the directory's CA or the system's roots), one
//! connection per call, and errors in words an administrator can act on.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::settings::Settings;
use crate::DirError;

/// The client TLS configuration: only the CAs of `ca_bundle` when given, else the system's.
pub fn tls_config(s: &Settings) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match &s.ca_bundle {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "cannot read ldap.ca_bundle {} ({e}): give a PEM file of the directory's CA certificates",
                    path.display()
                )
            })?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    format!(
                        "ldap.ca_bundle {} is not a PEM file ({e}): give the directory's CA certificates in PEM",
                        path.display()
                    )
                })?;
            if certs.is_empty() {
                return Err(format!(
                    "ldap.ca_bundle {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    format!(
                        "ldap.ca_bundle {}: a certificate is unusable ({e})",
                        path.display()
                    )
                })?;
            }
        }
        None => {
            // Missing system roots are not fatal here: a connection then fails with an
            // unknown-issuer error that points at ldap.ca_bundle.
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "could not load some of the system's CA certificates");
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    // The provider is explicit so that no process-wide default has to be installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens one connection to `url` (with StartTLS on ldap:// when asked), all within `timeout`.
pub async fn open(
    url: &str,
    starttls: bool,
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Ldap, String> {
    let settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(starttls && url.starts_with("ldap://"))
        .set_config(tls.clone());
    // ldap3's own timeout covers TCP, StartTLS and the handshake; this one guards the rest.
    match tokio::time::timeout(timeout, LdapConnAsync::with_settings(settings, url)).await {
        Ok(Ok((conn, ldap))) => {
            tokio::spawn(async move {
                if let Err(e) = conn.drive().await {
                    tracing::debug!(error = %e, "directory connection ended");
                }
            });
            Ok(ldap)
        }
        Ok(Err(e)) => Err(describe(&e, timeout)),
        Err(_) => Err(timed_out(timeout)),
    }
}

/// One open connection and what its errors need to say.
pub struct Conn {
    pub ldap: Ldap,
    pub url: String,
    pub timeout: Duration,
}

impl Conn {
    /// A failed operation (timeout, lost connection): the directory did not answer.
    pub fn op_error(&self, what: &str, e: &LdapError) -> DirError {
        DirError::Unavailable(format!(
            "{}: {} during {what}",
            self.url,
            describe(e, self.timeout)
        ))
    }

    /// Unbind and let the connection go; errors do not matter any more.
    pub async fn close(mut self) {
        let _ = self.ldap.with_timeout(self.timeout).unbind().await;
    }
}

pub fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", secs(timeout))
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The rustls error somewhere in `e`'s chain (tokio-rustls wraps it in an io::Error).
fn tls_error(e: &LdapError) -> Option<&rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(t);
            }
        }
        cur = err.source();
    }
    None
}

fn describe_tls(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "the server's certificate is not signed by a trusted CA (set ldap.ca_bundle to the directory's CA certificate)".into(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate is not for this host name (write the name its certificate holds in ldap.url)".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check this machine's clock)".into()
            }
            CertificateError::Revoked => "the server's certificate is revoked".into(),
            other => format!("the server's certificate was refused ({other:?})"),
        },
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server did not answer in TLS (is this an ldap:// port? then use ldap:// with ldap.starttls = true)".into()
        }
        E::AlertReceived(a) => format!("the server ended the TLS handshake ({a:?})"),
        other => format!("TLS failed: {other}"),
    }
}

/// An ldap3 error in words an administrator can act on.
pub fn describe(e: &LdapError, timeout: Duration) -> String {
    if let Some(t) = tls_error(e) {
        return describe_tls(t);
    }
    match e {
        LdapError::Timeout { .. } => timed_out(timeout),
        LdapError::Io { source } => match source.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                "the server closed the connection (a TLS port spoken to without TLS, or the reverse?)".into()
            }
            _ => source.to_string(),
        },
        LdapError::LdapResult { result } => format!(
            "StartTLS refused (code {}{})",
            result.rc,
            if result.text.is_empty() { String::new() } else { format!(": {}", result.text) }
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_tls(e: rustls::Error) -> LdapError {
        LdapError::Io {
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }
    }

    #[test]
    fn tls_failures_read_as_advice() {
        let t = Duration::from_secs(5);
        let m = describe(
            &io_tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            t,
        );
        assert!(
            m.contains("not signed by a trusted CA") && m.contains("ldap.ca_bundle"),
            "{m}"
        );
        let m = describe(
            &io_tls(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
            t,
        );
        assert!(m.contains("not for this host name"), "{m}");
        let m = describe(
            &io_tls(rustls::Error::InvalidCertificate(CertificateError::Expired)),
            t,
        );
        assert!(m.contains("expired"), "{m}");
        let refused = LdapError::Io {
            source: std::io::ErrorKind::ConnectionRefused.into(),
        };
        assert_eq!(describe(&refused, t), "connection refused");
        assert_eq!(
            timed_out(Duration::from_millis(1500)),
            "timed out after 1.5s"
        );
        assert_eq!(timed_out(t), "timed out after 5s");
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("kura-ldap-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let s = Settings {
            ca_bundle: Some(path.clone()),
            ..crate::settings::tests::ad()
        };
        let e = tls_config(&s).unwrap_err();
        assert!(e.contains("ldap.ca_bundle"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
