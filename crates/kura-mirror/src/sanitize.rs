//! Error text that is safe to store and show: no credentials in URLs, no AWS key ids or
//! signatures, bounded length.

use std::fmt::Display;

use url::{Position, Url};

/// Removes `user:password@` from URLs, AWS access key ids (`AKIA...`/`ASIA...`), ARNs and long
/// hex runs (signatures), and caps the length. Takes any message (`&str`, `MirrorError`, ...).
pub fn sanitize(text: impl Display) -> String {
    let text = text.to_string();
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(is_separator) {
        out.push_str(&clean_word(word));
    }
    let out = out.trim().to_string();
    if out.chars().count() > 600 {
        let cut: String = out.chars().take(600).collect();
        format!("{cut}...")
    } else {
        out
    }
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == '\'' || c == '"'
}

fn clean_word(word: &str) -> String {
    let mut w = scrub_url(word);
    if let Some(i) = w.find("arn:aws") {
        // Role and account names are nobody's business in a pusher's terminal.
        let end = w[i..]
            .find(|c: char| is_separator(c) || c == ',')
            .map(|e| i + e)
            .unwrap_or(w.len());
        w = format!("{}arn:aws:***{}", &w[..i], &w[end..]);
    }
    let core = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let looks_like_key = (core.starts_with("AKIA") || core.starts_with("ASIA"))
        && core.len() >= 16
        && core
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let long_hex = core.len() >= 40 && core.bytes().all(|b| b.is_ascii_hexdigit());
    if (looks_like_key || long_hex) && !core.is_empty() {
        return w.replace(core, "***");
    }
    w
}

/// A URL in `word` with user info comes back as `scheme://***@host/...`. One that `url` cannot
/// read, or that git might read differently (`\`), loses everything after `://` if it has an
/// `@`: better an unhelpful message than a leaked password.
fn scrub_url(word: &str) -> String {
    let Some(sep) = word.find("://") else {
        return word.to_string();
    };
    let start = word[..sep]
        .bytes()
        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
        .map_or(0, |p| p + 1);
    let end = word.find(is_separator).unwrap_or(word.len()).max(sep);
    let (before, candidate, after) = (&word[..start], &word[start..end], &word[end..]);
    match Url::parse(candidate) {
        Ok(u) if !candidate.contains('\\') => {
            if u.username().is_empty() && u.password().is_none() {
                word.to_string()
            } else {
                format!(
                    "{before}{}://***@{}{after}",
                    u.scheme(),
                    &u[Position::BeforeHost..]
                )
            }
        }
        _ if candidate[sep - start..].contains('@') => {
            format!("{before}{}://***{after}", &word[start..sep])
        }
        _ => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_secrets() {
        let s = sanitize(
            "fatal: unable to access 'https://bob:hunter2@git.example.com/x.git/': 403 AKIAABCDEFGHIJKLMNOP",
        );
        assert!(
            !s.contains("hunter2") && !s.contains("AKIAABCDEFGHIJKLMNOP"),
            "{s}"
        );
        assert!(s.contains("https://***@git.example.com/x.git/"), "{s}");
        let s =
            sanitize("User: arn:aws:sts::123456789012:assumed-role/kura/task is not authorized");
        assert!(
            !s.contains("123456789012") && s.contains("arn:aws:***"),
            "{s}"
        );
        let long = "x".repeat(2000);
        assert!(sanitize(&long).len() < 700);
    }

    #[test]
    fn scrubs_every_spelling_of_user_info() {
        for (text, want) in [
            (
                "remote=https://bob:pw1@h/x.git,",
                "remote=https://***@h/x.git,",
            ),
            ("http://:pw1@h:8080/x", "http://***@h:8080/x"),
            ("http://bob@h/x", "http://***@h/x"),
            ("http://h\\bob:pw1@evil/x", "http://***"),
            ("https://bob:pw1@h:99999/x", "https://***"),
            ("https://h/x@v1.git", "https://h/x@v1.git"),
            ("see https://h/x.git now", "see https://h/x.git now"),
        ] {
            assert_eq!(sanitize(text), want, "{text}");
        }
    }
}
