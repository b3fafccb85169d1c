//! Parsers of untrusted input that need nothing but the bytes: names and repository paths
//! from URLs, the `Authorization` header, the `Git-Protocol` header, git's credential-helper
//! queries, configuration values (networks, durations), which upload-pack requests are clones. Pure and small, so that
//! they can be fuzzed on their own (`crates/kura-fuzz`). No I/O, no HTTP types.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod names;
pub mod upload_request;

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

/// The longest duration Kura reads anywhere (configuration, token lifetimes): ten years. Longer
/// ones are typing mistakes, and would overflow the clocks they are added to.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(3650 * 86_400);

/// A duration as people write it in Kura: a number with a unit (`30s`, `5m`, `12h`, `90d`,
/// or humantime's longer forms such as `1h 30m`), from `0s` to `3650d`. The one rule for the
/// configuration, the command line and the API.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty duration: write it with a unit, e.g. 30s, 5m, 12h or 90d".into());
    }
    if t.starts_with('-') {
        return Err(format!("{t:?} is negative: a duration is 0s or longer"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{t:?} has no unit: write {t}s, {t}m, {t}h or {t}d"));
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!("{t:?} is not a duration ({e}): write it with a unit, e.g. 30s, 5m, 12h or 90d")
    })?;
    if d > MAX_DURATION {
        return Err(format!(
            "{t:?} is longer than 3650d (ten years), the longest Kura accepts"
        ));
    }
    Ok(d)
}

/// A lifetime (of a token): a duration longer than `0s`.
pub fn parse_lifetime(text: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!(
            "{:?} is no time at all: give a lifetime such as 12h or 90d, or none for no expiry",
            text.trim()
        ));
    }
    Ok(d)
}

/// A duration as Kura prints it, the way its README writes them: one unit, the largest that
/// fits (`60s`, `5m`, `1h`, `24h`, `90d`; not `1m` or `1d`); anything else as humantime
/// writes it. Reads back with [`parse_duration`].
#[allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than rust-version
pub fn format_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return humantime::format_duration(d).to_string();
    }
    // `1h` reads well; `1d` and `1m` are written `24h` and `60s`.
    for (unit, n, least) in [("d", 86_400, 2), ("h", 3600, 1), ("m", 60, 2)] {
        if secs % n == 0 && secs / n >= least {
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
    use std::time::Duration;

    #[test]
    fn durations_need_a_unit_and_a_range() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("3650d"), Ok(MAX_DURATION));
        for (bad, says) in [
            ("5", "no unit: write 5s"),
            ("-5d", "negative"),
            ("1000y", "longer than 3650d"),
            ("soon", "not a duration"),
            ("", "empty"),
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        assert!(parse_lifetime("0s").unwrap_err().contains("no time"));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::from_secs(43_200)));
    }

    #[test]
    fn durations_print_as_the_readme_writes_them() {
        for (secs, text) in [
            (60, "60s"),
            (90, "90s"),
            (300, "5m"),
            (3600, "1h"),
            (7200, "2h"),
            (86_400, "24h"),
            (7 * 86_400, "7d"),
            (90 * 86_400, "90d"),
            (0, "0s"),
            (61, "61s"),
        ] {
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)));
        }
    }

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
