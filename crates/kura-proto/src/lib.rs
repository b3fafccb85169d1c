//! Parsers of untrusted input that need nothing but the bytes: names and repository paths
//! from URLs, the `Authorization` header, the `Git-Protocol` header, git's credential-helper
//! queries, configuration values (networks, durations). Pure and small, so that
//! they can be fuzzed on their own (`crates/kura-fuzz`). No I/O, no HTTP types.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod names;

/// What git asks a credential helper: the `key=value` lines up to the first blank line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CredentialQuery {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
}

pub fn credential_query(input: &str) -> CredentialQuery {
    let mut q = CredentialQuery::default();
    for line in input.lines() {
        if line.is_empty() {
            break;
        }
        match line.split_once('=') {
            Some(("protocol", v)) => q.protocol = Some(v.to_string()),
            Some(("host", v)) => q.host = Some(v.to_string()),
            Some(("path", v)) => q.path = Some(v.to_string()),
            _ => {}
        }
    }
    q
}

/// A CIDR (`10.0.0.0/8`) or a single address, from the configuration.
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not a network: write it as 10.0.0.0/8 or 10.1.2.3"))
}

/// A duration as the configuration prints it: whole days, hours or minutes in one unit
/// (`90d`, not "2months 29days 2h 52m 48s"); anything else as humantime writes it. Reads back
/// with `humantime::parse_duration`.
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than rust-version
pub fn format_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return humantime::format_duration(d).to_string();
    }
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % n == 0 {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

use base64::Engine;

/// What an `Authorization` header offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Password { user: String, secret: String },
    Token(String),
}

/// The header is not Basic or Bearer as they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Parses an `Authorization` header value. Basic with an empty password is how git asks for
/// the challenge (the user name is in the remote URL): it offers nothing. A Basic password
/// that starts with `token_prefix` is a token.
pub fn authorization(value: Option<&[u8]>, token_prefix: &str) -> Result<Credentials, Malformed> {
    let Some(value) = value else {
        return Ok(Credentials::None);
    };
    let value = std::str::from_utf8(value).map_err(|_| Malformed)?;
    let (scheme, rest) = value.split_once(' ').ok_or(Malformed)?;
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| Malformed)?;
        let raw = String::from_utf8(raw).map_err(|_| Malformed)?;
        let (user, secret) = raw.split_once(':').ok_or(Malformed)?;
        if secret.is_empty() {
            return Ok(Credentials::None);
        }
        if secret.starts_with(token_prefix) {
            return Ok(Credentials::Token(secret.to_string()));
        }
        Ok(Credentials::Password {
            user: user.to_string(),
            secret: secret.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let t = rest.trim();
        if t.is_empty() {
            return Err(Malformed);
        }
        Ok(Credentials::Token(t.to_string()))
    } else {
        Err(Malformed)
    }
}

/// A `Git-Protocol` header reaches git only when it is a `:`-separated list of `key[=value]`
/// made of safe characters, at most 256 bytes. `None`: refuse it.
pub fn git_protocol(value: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(value).ok()?;
    let safe = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let ok = s.len() <= 256
        && s.split(':').all(|item| match item.split_once('=') {
            Some((k, v)) => safe(k) && safe(v),
            None => safe(item),
        });
    ok.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
        .into_bytes()
    }

    #[test]
    fn authorization_headers() {
        let a = |v: &[u8]| authorization(Some(v), "kura_");
        assert_eq!(authorization(None, "kura_"), Ok(Credentials::None));
        assert_eq!(
            a(&basic("alice:")),
            Ok(Credentials::None),
            "asks for the challenge"
        );
        assert_eq!(
            a(&basic("alice:kura_x")),
            Ok(Credentials::Token("kura_x".into()))
        );
        assert_eq!(
            a(&basic("alice:pw:with:colons")),
            Ok(Credentials::Password {
                user: "alice".into(),
                secret: "pw:with:colons".into()
            })
        );
        assert_eq!(
            a(b"bearer  kura_t "),
            Ok(Credentials::Token("kura_t".into()))
        );
        for bad in [
            &b"Basic"[..],
            b"Basic !!!",
            b"Digest x",
            b"Bearer ",
            b"Basic \xff",
            &basic("nocolon"),
        ] {
            assert_eq!(a(bad), Err(Malformed), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn credential_queries() {
        let q = credential_query("protocol=https\nhost=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/app\n\nhost=ignored\n");
        assert_eq!(
            q.host.as_deref(),
            Some("git-codecommit.us-east-1.amazonaws.com")
        );
        assert_eq!(q.path.as_deref(), Some("v1/repos/app"));
        assert_eq!(q.protocol.as_deref(), Some("https"));
        assert_eq!(credential_query("garbage\n"), CredentialQuery::default());
    }

    #[test]
    fn git_protocol_is_validated() {
        assert_eq!(git_protocol(b"version=2"), Some("version=2"));
        assert!(git_protocol(b"version=2:object-format=sha1").is_some());
        for bad in [
            "version=2;rm -rf",
            "version=2\tx",
            "a==b",
            "version=",
            ":",
            "",
        ] {
            assert_eq!(git_protocol(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(git_protocol("v=1".repeat(100).as_bytes()), None, "too long");
    }
}
