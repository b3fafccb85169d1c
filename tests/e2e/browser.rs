//! The repository viewer in a real browser: headless Chromium, driven by playwright-core from
//! `tests/browser/viewer.mjs`, signs in, browses, searches, downloads and probes a repository
//! full of markup (file, branch and commit names, README, HTML and SVG files). SQLite only: one
//! browser per test run is enough. Screenshots land in `$CARGO_TARGET_DIR/browser-shots`.
//!
//! Needs node, Chromium (`KURA_TEST_CHROMIUM`, default /usr/bin/chromium) and
//! `tests/browser/node_modules`; tests/run installs them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const PASSWORD: &str = "alice-browser-pw-1";
/// The whole node run; the script gives up on its own after 150 s.
const NODE_TIMEOUT: Duration = Duration::from_secs(180);

// The script checks these by name (tests/browser/viewer.mjs has the same constants).
const NEEDLE: &str = "needle_for_search";
const MARKUP_FILE: &str = "<img src=x onerror=alert(1)>.md";
/// `x<svg onload=alert(1)>` is not a valid branch name (git refuses spaces); a slash separates
/// the attribute just as well for an HTML parser.
const MARKUP_BRANCH: &str = "x<svg/onload=alert(1)>";
const MARKUP_TITLE: &str = "Add <b onmouseover=alert(1)>markup</b> & \"quotes\"";
const DIFF_TITLE: &str = "Tune the step functions";

const README: &str = r#"# App

A small step machine, pushed by the browser test. Read the [guide](docs/guide.md) first.

| Step | What it does      |
|------|-------------------|
| 0    | mixes the input   |
| 1    | halves or triples |

```rust
fn main() {
    println!("{}", app::run(100));
}
```

<script>alert('readme')</script>

Do not [click](javascript:alert('link')).

![logo](img/logo.png)
"#;

const GUIDE: &str = "# Guide\n\nRead this guide first.\n\nThen run `cargo run`.\n";

/// A 16x16 teal PNG.
const LOGO_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x91, 0x68,
    0x36, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xd0, 0x9a, 0xdb, 0x4f,
    0x12, 0x62, 0x18, 0xd5, 0x30, 0xaa, 0x61, 0xf8, 0x6a, 0x00, 0x00, 0x6c, 0xb5, 0x56, 0x10, 0x21,
    0x6b, 0xde, 0xed, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const EVIL_HTML: &str = "<!doctype html>\n<title>evil</title>\n<script>alert('html')</script>\n";
const EVIL_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert('svg')\"><script>alert('svg2')</script></svg>\n";

/// `src/main.rs`, about 1200 lines; `tuned` is the second version (some lines changed, one
/// removed, one added). Returns the text and the (1-based) line holding NEEDLE.
fn main_rs(tuned: bool) -> (String, usize) {
    const FNS: u64 = 84;
    let mut s = String::from(
        "//! A small step machine, long enough to scroll.\n\
         \n\
         const STEPS: u64 = 84;\n\
         \n\
         fn main() {\n    \
             let mut total = 0u64;\n    \
             for i in 0..STEPS {\n        \
                 total = total.wrapping_add(step(i));\n    \
             }\n    \
             println!(\"{total}\");\n\
         }\n\
         \n\
         /// Runs step `i % 84` on `i`.\n\
         fn step(i: u64) -> u64 {\n    \
             match i % 84 {\n",
    );
    for n in 0..FNS {
        s += &format!("        {n} => step_{n}(i),\n");
    }
    s += "        _ => unreachable!(),\n    }\n}\n\n";
    for n in 0..FNS {
        if !(tuned && n == 5) {
            s += &format!("/// Step {n}: mixes the input with a constant.\n");
        }
        s += &format!("pub fn step_{n}(x: u64) -> u64 {{\n");
        if n == 60 {
            s += &format!("    // {NEEDLE}: the search test looks for this word\n");
        }
        let seed = n.wrapping_mul(0x9e37_79b9) + 1;
        s += &format!("    let mut acc = x ^ 0x{seed:x};\n");
        s += &format!("    for k in 0..{} {{\n", n % 7 + 1);
        s += "        acc = acc.rotate_left(k).wrapping_mul(31).wrapping_add(u64::from(k));\n";
        s += "    }\n";
        if tuned && n == 7 {
            s += "    acc ^= acc >> 17;\n";
        }
        s += "    if acc % 2 == 0 {\n        acc / 2\n    } else {\n";
        if tuned && n % 10 == 3 {
            s += "        acc.wrapping_mul(5).wrapping_add(3)\n";
        } else {
            s += "        acc.wrapping_mul(3).wrapping_add(1)\n";
        }
        s += "    }\n}\n\n";
    }
    let line = s
        .lines()
        .position(|l| l.contains(NEEDLE))
        .expect("the needle line")
        + 1;
    (s, line)
}

/// Where the screenshots go: `$CARGO_TARGET_DIR/browser-shots`, else next to `debug/` above
/// this test binary (`target/debug/deps/e2e-*`).
fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors().nth(3).map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("browser-shots")
}

#[test]
fn viewer_in_a_real_browser() {
    // What the browser side needs, before starting anything.
    let tests = tests_dir();
    let script = tests.join("browser/viewer.mjs");
    let chromium =
        std::env::var("KURA_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    assert!(
        Path::new(&chromium).is_file(),
        "Chromium is not at {chromium}: tests/run installs it (apt-get install -y chromium), or set \
         KURA_TEST_CHROMIUM to a Chromium binary"
    );
    assert!(
        tests.join("browser/node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is not installed: tests/run does it (npm ci --prefix tests/browser)"
    );
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        other => panic!("node (20 or later) is needed for the browser test: {other:?}"),
    }
    let shots = shots_dir();
    let _ = fs::remove_dir_all(&shots);
    fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("create {}: {e}", shots.display()));

    // A webhook trigger on the repository: its deliveries are browsed, redelivered and a
    // second webhook added and removed in the browser.
    let rx = Receiver::start(None);
    let k = Kura::builder(Backend::Sqlite)
        .env("KURA_TRIGGER_ALLOWED_TARGETS", "127.0.0.1")
        .start();
    k.add_user("alice", PASSWORD);
    let token = k.token("alice", "write");
    k.cli_ok(&["repo", "create", "alice/app"]);
    k.cli(&["trigger", "add", "alice/app", "webhook", &rx.url("/ci")])
        .run()
        .assert_ok();
    let dir = k.init_repo("app", &k.url_auth("alice", &token, "alice/app.git"));
    let commit = |files: &[(&str, &[u8])], msg: &str| -> String {
        for (name, body) in files {
            let p = dir.join(name);
            fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            fs::write(&p, body).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        }
        k.git_ok(&dir, &["add", "-A"]);
        k.git_ok(&dir, &["commit", "-q", "-m", msg]);
        k.rev(&dir, "HEAD")
    };

    let (v1, _) = main_rs(false);
    let (v2, needle_line) = main_rs(true);
    commit(
        &[
            ("README.md", README.as_bytes()),
            ("docs/guide.md", GUIDE.as_bytes()),
            ("img/logo.png", LOGO_PNG),
        ],
        "Start with a README and a guide",
    );
    commit(&[("src/main.rs", v1.as_bytes())], "Add the step machine");
    commit(
        &[
            (MARKUP_FILE, b"This file's name is markup.\n"),
            ("evil.html", EVIL_HTML.as_bytes()),
            ("evil.svg", EVIL_SVG.as_bytes()),
        ],
        MARKUP_TITLE,
    );
    k.git_ok(&dir, &["tag", "-a", "v1.0", "-m", "Release 1.0"]);
    k.git_ok(&dir, &["branch", "release/1.0"]);
    let diff_commit = commit(&[("src/main.rs", v2.as_bytes())], DIFF_TITLE);
    k.git_ok(&dir, &["branch", MARKUP_BRANCH]);
    let refs = ["main", "release/1.0", MARKUP_BRANCH, "v1.0"];
    k.git_ok(&dir, &[&["push", "-q", "origin"][..], &refs].concat());
    let pushed = k.heads_and_tags(&k.url_auth("alice", &token, "alice/app.git"));
    assert_eq!(
        pushed.len(),
        refs.len(),
        "branches and tags on the server: {pushed:?}"
    );
    rx.wait_for(refs.len(), Duration::from_secs(30));

    // The browser. Kura's log (last 12 kB) is printed by Kura's Drop when this panics.
    let workspace = tests.parent().expect("the workspace").to_path_buf();
    let out = cmd("node", &[&script.display().to_string()])
        .dir(&workspace)
        .env("KURA_URL", k.base())
        .env("KURA_USER", "alice")
        .env("KURA_PASSWORD", PASSWORD)
        .env("KURA_REPO", "alice/app")
        .env("KURA_SHOTS", &shots)
        .env("KURA_TEST_CHROMIUM", &chromium)
        .env("KURA_NEEDLE_LINE", needle_line.to_string())
        .env("KURA_DIFF_COMMIT", &diff_commit)
        .env("KURA_RECEIVER", rx.url("/from-the-browser"))
        .timeout(NODE_TIMEOUT)
        .run();
    println!("{}", out.stdout);
    println!("screenshots: {}", shots.display());
    assert!(
        out.ok(),
        "the browser test failed ({}); its output is above, screenshots in {}\n--- node stderr ---\n{}",
        out.status,
        shots.display(),
        out.stderr
    );
    // The redelivery clicked in the browser reached the receiver.
    rx.wait_for(refs.len() + 1, Duration::from_secs(30));
}
