//! Repository paths from URLs and the CLI: an accepted name never contains a path separator,
//! `..`, or a leading dot or dash.
#![no_main]
use kura_proto::names::RepoPath;
use libfuzzer_sys::fuzz_target;

fn safe(part: &str) {
    assert!(!part.is_empty() && !part.contains('/') && !part.contains(".."));
    assert!(!part.starts_with('.') && !part.starts_with('-'));
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = s.parse::<RepoPath>() {
        safe(&p.namespace);
        safe(&p.name);
    }
    if let Some((ns, name)) = s.split_once('/') {
        if let Ok(p) = RepoPath::new(ns, name) {
            safe(&p.namespace);
            safe(&p.name);
        }
    }
});
