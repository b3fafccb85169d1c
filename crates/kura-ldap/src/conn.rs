//! Connections: the TLS configuration (the directory's CA or the system's roots), one
//! connection per call with failover over the URLs, and errors in words.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::settings::Settings;

/// The client TLS configuration: only the CAs of `ca_bundle` when given, else the system's.
pub fn tls_config(s: &Settings) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match &s.ca_bundle {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| {
                    format!(
                        "cannot read ldap.ca_bundle {} ({e}): give a PEM file of the directory's CA certificates",
                        path.display()
                    )
                })?;
            if certs.is_empty() {
                return Err(format!(
                    "ldap.ca_bundle {} holds no PEM certificate",
                    path.display()
                ));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    format!("ldap.ca_bundle {}: a certificate is unusable ({e})", path.display())
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens one connection to `url` (with StartTLS when asked), all of it within `timeout`.
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
    match tokio::time::timeout(timeout, LdapConnAsync::with_settings(settings, url)).await
    {
        Ok(Ok((conn, ldap))) => {
            tokio::spawn(async move {
                if let Err(e) = conn.drive().await {
                    tracing::debug!(error = %e, "directory connection ended");
                }
            });
            Ok(ldap)
        }
        Ok(Err(e)) => Err(describe(&e, timeout)),
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f32())),
    }
}

/// An ldap3 error in words an administrator can act on.
pub fn describe(e: &LdapError, timeout: Duration) -> String {
    let text = format!("{e}");
    let mut chain = text.clone();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(&format!(": {s}"));
        src = s.source();
    }
    if chain.contains("UnknownIssuer") || chain.contains("invalid peer certificate") {
        return format!(
            "the server's certificate is not signed by a trusted CA (set ldap.ca_bundle to the directory's CA certificate): {chain}"
        );
    }
    if chain.contains("NotValidForName") || chain.contains("not valid for name") {
        return format!(
            "the server's certificate is not for this host name (use the name in its certificate in ldap.url): {chain}"
        );
    }
    match e {
        LdapError::Timeout { .. } => format!("no answer within {}s", timeout.as_secs_f32()),
        _ => chain,
    }
}
