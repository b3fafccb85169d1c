//! Turning repository content into safe HTML: syntax highlighting (syntect, CSS classes only,
//! so the strict CSP needs no inline styles), Markdown (pulldown-cmark; raw HTML is shown as
//! text and only safe link schemes survive, so no sanitiser is needed afterwards), and small
//! formatting helpers for the templates.

use std::fmt::Write as _;
use std::sync::OnceLock;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag};
use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

/// Files longer than this are shown without highlighting (it is the slow part of a page).
pub const MAX_HIGHLIGHT_BYTES: usize = 256 * 1024;

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// Loads the grammars ahead of the first page that needs them.
pub fn warm_up() {
    let _ = syntaxes();
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn syntax_for(path: &str, first_line: &str) -> Option<&'static SyntaxReference> {
    let ss = syntaxes();
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or(name);
    ss.find_syntax_by_extension(ext)
        .or_else(|| ss.find_syntax_by_extension(name))
        .or_else(|| match ext {
            "ts" | "tsx" | "mjs" | "cjs" => ss.find_syntax_by_extension("js"),
            "toml" | "ini" | "cfg" => ss.find_syntax_by_extension("yaml"),
            "Dockerfile" | "dockerfile" => ss.find_syntax_by_extension("sh"),
            _ => None,
        })
        .or_else(|| ss.find_syntax_by_first_line(first_line))
        .filter(|s| s.name != "Plain Text")
}

/// The lines of `text` as HTML, one string per line (without its newline), highlighted when
/// the language is known and the file is not too large. Every line is self-contained: spans
/// that cross a line end are closed and reopened.
pub fn highlight_lines(path: &str, text: &str) -> Vec<String> {
    let first = text.lines().next().unwrap_or("");
    match syntax_for(path, first).filter(|_| text.len() <= MAX_HIGHLIGHT_BYTES) {
        Some(syntax) => highlighted(syntax, text).unwrap_or_else(|| plain_lines(text)),
        None => plain_lines(text),
    }
}

/// Highlighted HTML of a code block (Markdown fences), or `None` for an unknown language.
pub fn highlight_block(lang: &str, text: &str) -> Option<String> {
    let ss = syntaxes();
    let syntax = ss
        .find_syntax_by_token(lang)
        .filter(|s| s.name != "Plain Text" && text.len() <= MAX_HIGHLIGHT_BYTES)?;
    Some(highlighted(syntax, text)?.join("\n"))
}

fn plain_lines(text: &str) -> Vec<String> {
    text.lines().map(escape).collect()
}

/// Scope prefixes and the short class each gets (the CSS colours these few); the innermost
/// scope with a listed prefix wins. Short classes keep highlighted pages (and the cache) small.
const CLASSES: &[(&str, &str)] = &[
    ("comment", "c"),
    ("string", "s"),
    ("constant.character", "s"),
    ("constant.numeric", "n"),
    ("constant.language", "n"),
    ("constant.other", "n"),
    ("keyword", "k"),
    ("storage", "k"),
    ("entity.name.function", "f"),
    ("support.function", "f"),
    ("variable.function", "f"),
    ("entity.name.type", "t"),
    ("entity.name.class", "t"),
    ("entity.name.struct", "t"),
    ("entity.name.enum", "t"),
    ("support.type", "t"),
    ("support.class", "t"),
    ("entity.name.tag", "g"),
    ("entity.other.attribute-name", "a"),
    ("variable.parameter", "v"),
    ("markup.heading", "h"),
    ("markup.inserted", "i"),
    ("markup.deleted", "d"),
];

fn class_scopes() -> &'static [(syntect::parsing::Scope, &'static str)] {
    static S: OnceLock<Vec<(syntect::parsing::Scope, &'static str)>> = OnceLock::new();
    S.get_or_init(|| {
        CLASSES
            .iter()
            .filter_map(|(p, c)| syntect::parsing::Scope::new(p).ok().map(|s| (s, *c)))
            .collect()
    })
}

fn class_of(stack: &ScopeStack) -> Option<&'static str> {
    let table = class_scopes();
    stack.as_slice().iter().rev().find_map(|s| {
        table
            .iter()
            .find(|(p, _)| p.is_prefix_of(*s))
            .map(|(_, c)| *c)
    })
}

/// One HTML string per line; each line's spans open and close on that line.
fn highlighted(syntax: &SyntaxReference, text: &str) -> Option<Vec<String>> {
    let ss = syntaxes();
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut out = Vec::new();
    for line in LinesWithEndings::from(text) {
        let ops = state.parse_line(line, ss).ok()?;
        let body = line.trim_end_matches(['\n', '\r']);
        // (class, start, end) runs; adjacent runs of one class are merged.
        let mut runs: Vec<(Option<&str>, usize, usize)> = Vec::new();
        let mut push = |class: Option<&'static str>, from: usize, to: usize| {
            let to = to.min(body.len());
            if from >= to {
                return;
            }
            match runs.last_mut() {
                Some(last) if last.0 == class && last.2 == from => last.2 = to,
                _ => runs.push((class, from, to)),
            }
        };
        let mut at = 0;
        for (i, op) in ops {
            push(class_of(&stack), at, i);
            at = at.max(i);
            stack.apply(&op).ok()?;
        }
        push(class_of(&stack), at, body.len());
        let mut html = String::with_capacity(body.len() + 16 * runs.len());
        for (class, from, to) in runs {
            match class {
                Some(c) => {
                    let _ = write!(
                        html,
                        "<span class=\"{c}\">{}</span>",
                        escape(&body[from..to])
                    );
                }
                None => html.push_str(&escape(&body[from..to])),
            }
        }
        out.push(html);
    }
    Some(out)
}

/// Where relative links and images in a rendered Markdown file point.
pub struct LinkBase<'a> {
    /// `/ns/name`
    pub repo: &'a str,
    /// The ref as it appears in URLs (already encoded).
    pub rev: &'a str,
    /// The folder of the Markdown file ("" = root).
    pub dir: &'a str,
}

/// Markdown (CommonMark + tables, strikethrough, task lists) as safe HTML.
pub fn markdown(src: &str, base: &LinkBase<'_>) -> String {
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut in_code: Option<String> = None;
    let mut code = String::new();
    let mut events = Vec::new();
    for ev in Parser::new_ext(src, opts) {
        match ev {
            // Raw HTML from the file is shown as text, never as markup.
            Event::Html(h) | Event::InlineHtml(h) => events.push(Event::Text(h)),
            Event::Start(Tag::CodeBlock(kind)) => {
                in_code = Some(match kind {
                    CodeBlockKind::Fenced(l) => {
                        l.split([' ', ',', '{']).next().unwrap_or("").to_string()
                    }
                    CodeBlockKind::Indented => String::new(),
                });
                code.clear();
            }
            Event::End(pulldown_cmark::TagEnd::CodeBlock) => {
                let lang = in_code.take().unwrap_or_default();
                let body = highlight_block(&lang, &code)
                    .unwrap_or_else(|| escape(code.trim_end_matches('\n')));
                let class = if lang.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"language-{}\"", escape(&lang))
                };
                // Our own markup, built from escaped text.
                events.push(Event::Html(CowStr::from(format!(
                    "<pre><code{class}>{body}</code></pre>\n"
                ))));
            }
            Event::Text(t) if in_code.is_some() => code.push_str(&t),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => events.push(Event::Start(Tag::Link {
                // `<a@b.example>`: pulldown-cmark adds `mailto:` itself.
                dest_url: if link_type == pulldown_cmark::LinkType::Email {
                    dest_url
                } else {
                    CowStr::from(resolve_link(&dest_url, base, false))
                },
                link_type,
                title,
                id,
            })),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => events.push(Event::Start(Tag::Image {
                link_type,
                dest_url: CowStr::from(resolve_link(&dest_url, base, true)),
                title,
                id,
            })),
            other => events.push(other),
        }
    }
    let mut out = String::with_capacity(src.len() * 2);
    pulldown_cmark::html::push_html(&mut out, events.into_iter());
    out
}

/// Absolute http(s)/mailto links and in-page anchors stay; any other scheme (`javascript:`,
/// `data:`) becomes `#`; a relative path is resolved inside the repository (links to the
/// blob page, images to the raw file).
fn resolve_link(dest: &str, base: &LinkBase<'_>, image: bool) -> String {
    let d = dest.trim();
    if d.starts_with('#') {
        return d.to_string();
    }
    let lower = d.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        return d.to_string();
    }
    if lower.starts_with("//") || has_scheme(&lower) {
        return "#".into();
    }
    let (path, frag) = match d.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (d, None),
    };
    let path = path.split('?').next().unwrap_or("");
    let joined = if let Some(abs) = path.strip_prefix('/') {
        abs.to_string()
    } else if base.dir.is_empty() {
        path.to_string()
    } else {
        format!("{}/{}", base.dir, path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let kind = if image {
        "raw"
    } else if path.ends_with('/') {
        "tree"
    } else {
        "blob"
    };
    let mut url = format!("{}/{}/{}", base.repo, kind, base.rev);
    for p in &parts {
        url.push('/');
        url.push_str(&encode_segment(p));
    }
    if let Some(f) = frag {
        let _ = write!(url, "#{}", encode_segment(f));
    }
    url
}

fn has_scheme(s: &str) -> bool {
    match s.find(':') {
        Some(i) => {
            let scheme = &s[..i];
            !scheme.is_empty()
                && !scheme.contains('/')
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment (or a query value), percent-encoded for a URL.
pub fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// A `/`-separated path (or ref), each segment encoded, slashes kept.
pub fn encode_path(s: &str) -> String {
    s.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// "3 minutes ago", "2 days ago", "on 2026-01-31".
pub fn age(then: i64, now: i64) -> String {
    let d = (now - then).max(0);
    let (n, unit) = match d {
        0..=59 => return "just now".into(),
        60..=3599 => (d / 60, "minute"),
        3600..=86_399 => (d / 3600, "hour"),
        86_400..=2_591_999 => (d / 86_400, "day"),
        2_592_000..=31_535_999 => (d / 2_592_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A date-time in UTC, for `title` attributes.
pub fn utc(t: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    let s = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} UTC", s.trim_end_matches('Z').replacen('T', " ", 1))
}

/// A name safe in a quoted `Content-Disposition` filename: ASCII letters, digits and `._-`.
pub fn file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn size(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: LinkBase<'static> = LinkBase {
        repo: "/a/app",
        rev: "main",
        dir: "docs",
    };

    #[test]
    fn markdown_is_safe() {
        let html = markdown(
            "# T\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](JaVaScRiPt:1) \
             [z](data:text/html,1) <img src=x onerror=alert(1)>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
            &BASE,
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.to_lowercase().contains("href=\"javascript"), "{html}");
        assert!(!html.contains("href=\"data:"), "{html}");
        assert!(html.contains("<table>"), "{html}");
    }

    #[test]
    fn relative_links_resolve_inside_the_repository() {
        let html = markdown(
            "[g](guide.md#usage) [up](../README.md) ![l](/img/logo.png) [w](https://example.com/x)",
            &BASE,
        );
        assert!(
            html.contains("href=\"/a/app/blob/main/docs/guide.md#usage\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/a/app/blob/main/README.md\""),
            "{html}"
        );
        assert!(
            html.contains("src=\"/a/app/raw/main/img/logo.png\""),
            "{html}"
        );
        assert!(html.contains("href=\"https://example.com/x\""), "{html}");
    }

    #[test]
    fn email_autolinks_stay_mail_links() {
        let html = markdown("Write to <team@corp.example>.", &BASE);
        assert!(html.contains("href=\"mailto:team@corp.example\""), "{html}");
    }

    #[test]
    fn fenced_code_is_highlighted_and_escaped() {
        let html = markdown("```rust\nfn main() { let s = \"<b>\"; }\n```\n", &BASE);
        assert!(html.contains("<span class="), "{html}");
        assert!(html.contains("&lt;b&gt;"), "{html}");
    }

    #[test]
    fn highlighted_lines_are_self_contained() {
        let src = "/* a\n b */\nfn x() {}\n";
        let lines = highlight_lines("x.rs", src);
        assert_eq!(lines.len(), 3, "{lines:?}");
        for l in &lines {
            assert_eq!(
                l.matches("<span").count(),
                l.matches("</span>").count(),
                "{l}"
            );
        }
        assert!(lines[1].contains("class=\"c\""), "{lines:?}");
        let plain = highlight_lines("notes.unknownext", "<x>\n");
        assert_eq!(plain, vec!["&lt;x&gt;".to_string()]);
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_798_761_600), "2027-01-01 00:00:00 UTC");
        assert_eq!(age(0, 120), "2 minutes ago");
    }
}
