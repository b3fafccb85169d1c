//! Error text that is safe to store and show: no credentials in URLs, no AWS key ids or
//! signatures, bounded length.

/// Removes `user:password@` from URLs, AWS access key ids (`AKIA...`/`ASIA...`) and long hex
/// runs (signatures), and caps the length.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
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

fn clean_word(word: &str) -> String {
    let mut w = word.to_string();
    if let Some(i) = w.find("://") {
        let rest = &w[i + 3..];
        let auth_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            w = format!("{}://***@{}", &w[..i], &rest[at + 1..]);
        }
    }
    if let Some(i) = w.find("arn:aws") {
        // Role and account names are nobody's business in a pusher's terminal.
        let end = w[i..]
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == ',')
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
}
