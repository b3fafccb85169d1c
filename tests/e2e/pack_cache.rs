//! The pack cache for clone fan-out: identical clones are answered from one pack made once,
//! never a wrong pack (compared object by object with the repository and with the cache off),
//! one producer for identical clones at once, within its size, and a failed pack is not kept.
//! The cache does not touch the database, so these run on SQLite only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// `kura_pack_cache_*` figures from `/metrics`: `requests_total{result="hit"}` as `hit` etc.
fn cache_figures(k: &Kura, admin: &str) -> BTreeMap<String, u64> {
    let r = k.req("GET", "/metrics").bearer(admin).send();
    assert_eq!(r.status, 200, "{}", r.describe());
    let mut out = BTreeMap::new();
    for line in r.text().lines() {
        let Some(rest) = line.strip_prefix("kura_pack_cache_") else {
            continue;
        };
        let Some((name, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        let name = match name.strip_prefix("requests_total{result=\"") {
            Some(r) => r.trim_end_matches("\"}").to_string(),
            None => name.to_string(),
        };
        if let Ok(v) = value.trim().parse() {
            out.insert(name, v);
        }
    }
    out
}

fn figure(f: &BTreeMap<String, u64>, name: &str) -> u64 {
    f.get(name).copied().unwrap_or(0)
}

fn random_bytes(path: &Path, bytes: u64) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {bytes} /dev/urandom > '{}'",
            path.display()
        ))
        .status()
        .expect("head");
    assert!(st.success());
}

/// Every object reachable from the refs, sorted (`git rev-list --objects --all`).
fn objects(k: &Kura, dir: &Path) -> Vec<String> {
    let out = k.git_ok(dir, &["rev-list", "--objects", "--all"]);
    let mut v: Vec<String> = out
        .lines()
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

fn bare_clone(k: &Kura, url: &str, name: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["clone", "-q", "--bare"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[url, name]);
    k.git_ok(&k.work, &args);
    let dir = k.work.join(name);
    k.git_ok(&dir, &["fsck", "--full", "--strict", "--no-dangling"]);
    dir
}

fn storage(k: &Kura, repo: &str) -> PathBuf {
    let show = k.cli_ok(&["repo", "show", repo]);
    let line = show
        .lines()
        .find(|l| l.starts_with("storage:"))
        .unwrap_or_else(|| panic!("kura repo show prints the storage path: {show}"));
    PathBuf::from(line.trim_start_matches("storage:").trim())
}

/// A repository with history, branches, an annotated tag and a binary file.
fn project(k: &Kura, dir: &Path) {
    for i in 0..12 {
        let text: String = (0..200).map(|j| format!("line {i} {j}\n")).collect();
        k.commit(dir, &format!("src/f{}.txt", i % 4), &text, &format!("c{i}"));
        if i == 5 {
            k.git_ok(dir, &["branch", "feature"]);
            k.git_ok(dir, &["tag", "-a", "v1", "-m", "first"]);
        }
    }
    random_bytes(&dir.join("logo.bin"), 200_000);
    k.git_ok(dir, &["add", "logo.bin"]);
    k.git_ok(dir, &["commit", "-q", "-m", "binary"]);
    k.git_ok(dir, &["push", "-q", "origin", "--all"]);
    k.git_ok(dir, &["push", "-q", "origin", "--tags"]);
}

#[test]
fn repeated_clones_come_from_the_cache_and_are_right() {
    let mut k = Kura::builder(Backend::Sqlite)
        .env("KURA_ALLOW_ANONYMOUS_READ", "true")
        .start();
    let admin = k.token("admin", "read");
    let (tok, url, dir) = k.alice_app();
    project(&k, &dir);
    let want = objects(&k, &dir);

    for (n, proto) in [(0, "2"), (1, "0")] {
        let cfg = format!("protocol.version={proto}");
        let before = cache_figures(&k, &admin);
        let a = bare_clone(&k, &url, &format!("a{proto}"), &["-c", &cfg]);
        let b = bare_clone(&k, &url, &format!("b{proto}"), &["-c", &cfg]);
        let after = cache_figures(&k, &admin);
        assert_eq!(
            figure(&after, "produce") - figure(&before, "produce"),
            1,
            "v{proto}: {after:?}"
        );
        assert_eq!(
            figure(&after, "hit") - figure(&before, "hit"),
            1,
            "v{proto}: {after:?}"
        );
        assert_eq!(figure(&after, "entries"), n + 1, "{after:?}");
        for c in [&a, &b] {
            assert_eq!(
                objects(&k, c),
                want,
                "v{proto}: a clone has other objects than the repository"
            );
            assert_eq!(
                k.heads_and_tags(&c.display().to_string()),
                k.heads_and_tags(&url)
            );
        }
    }
    // On disk: what /metrics says, in the folder given.
    let packs = Path::new(
        k.env_value("KURA_PACK_CACHE_DIR")
            .expect("the harness sets the cache folder"),
    )
    .join("packs");
    assert_eq!(
        std::fs::read_dir(&packs)
            .expect("the cache folder has packs/")
            .count(),
        2
    );

    // A shallow clone is a key of its own, and served again from the cache.
    for name in ["s1", "s2"] {
        let s = bare_clone(&k, &url, name, &["--depth", "1"]);
        assert_eq!(k.git_ok(&s, &["rev-list", "--count", "HEAD"]).trim(), "1");
    }
    assert_eq!(figure(&cache_figures(&k, &admin), "hit"), 3);

    // A push moves the refs: the next clone is made afresh and has the new commit.
    let new = k.commit(&dir, "src/new.txt", "new\n", "after the cache");
    k.git_ok(&dir, &["push", "-q", "origin", "main"]);
    let before = cache_figures(&k, &admin);
    let c = bare_clone(&k, &url, "c", &[]);
    let after = cache_figures(&k, &admin);
    assert_eq!(
        figure(&after, "produce") - figure(&before, "produce"),
        1,
        "{after:?}"
    );
    assert_eq!(k.rev(&c, "main"), new);
    let want = objects(&k, &dir);
    assert_eq!(objects(&k, &c), want);

    // Public: anonymous readers get the cached pack too. Private again: the cached pack is no
    // way around the access decision.
    let anon = k.url("/alice/app.git");
    k.cli_ok(&["repo", "set", "alice/app", "--public"]);
    let before = cache_figures(&k, &admin);
    let pub_clone = bare_clone(&k, &anon, "anon-public", &[]);
    assert_eq!(objects(&k, &pub_clone), want);
    assert_eq!(
        figure(&cache_figures(&k, &admin), "hit"),
        figure(&before, "hit") + 1
    );
    k.cli_ok(&["repo", "set", "alice/app", "--private"]);
    let err = k.git_err(&k.work, &["clone", "-q", "--bare", &anon, "anon"]);
    assert!(
        err.contains("Authentication failed") || err.contains("could not read Username"),
        "{err}"
    );

    // The same clone with the cache off: the same objects and refs.
    k.stop_sigterm();
    k.set_env("KURA_PACK_CACHE_SIZE", "0");
    k.spawn();
    let url = k.url_auth("alice", &tok, "alice/app.git");
    let off = bare_clone(&k, &url, "off", &[]);
    assert_eq!(objects(&k, &off), want);
    assert_eq!(
        k.heads_and_tags(&off.display().to_string()),
        k.heads_and_tags(&c.display().to_string())
    );
    assert!(
        cache_figures(&k, &admin).is_empty(),
        "no cache figures when the cache is off"
    );
}

#[test]
fn identical_clones_at_once_make_one_pack() {
    let k = Kura::start(Backend::Sqlite);
    let admin = k.token("admin", "read");
    let (_tok, url, dir) = k.alice_app();
    // Some weight, so that the clones overlap with the pack being made.
    k.git_ok(&dir, &["config", "core.compression", "0"]);
    for i in 0..4 {
        random_bytes(&dir.join(format!("blob{i}.bin")), 3_000_000);
    }
    k.git_ok(&dir, &["add", "-A"]);
    k.git_ok(&dir, &["commit", "-q", "-m", "12 MB"]);
    project(&k, &dir);
    let want = objects(&k, &dir);

    let clones: Vec<PathBuf> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (k, url) = (&k, &url);
                s.spawn(move || bare_clone(k, url, &format!("p{i}"), &[]))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("a clone failed"))
            .collect()
    });
    let f = cache_figures(&k, &admin);
    eprintln!("pack cache after eight identical clones at once: {f:?}");
    assert_eq!(
        figure(&f, "produce"),
        1,
        "one pack for eight identical clones: {f:?}"
    );
    assert_eq!(figure(&f, "follow") + figure(&f, "hit"), 7, "{f:?}");
    for c in &clones {
        assert_eq!(objects(&k, c), want);
    }
}

#[test]
fn the_cache_stays_within_its_size() {
    let k = Kura::builder(Backend::Sqlite)
        .env("KURA_PACK_CACHE_SIZE", "700KiB")
        .start();
    let admin = k.token("admin", "read");
    let tok = k.user_with_token("alice");
    let mut urls = Vec::new();
    // Three repositories of ~300 KB (incompressible) and one larger than the whole cache.
    for (name, size) in [
        ("r1", 300_000),
        ("r2", 300_000),
        ("r3", 300_000),
        ("huge", 900_000),
    ] {
        k.cli_ok(&["repo", "create", &format!("alice/{name}")]);
        let url = k.url_auth("alice", &tok, &format!("alice/{name}.git"));
        let dir = k.init_repo(name, &url);
        random_bytes(&dir.join("data.bin"), size);
        k.git_ok(&dir, &["add", "data.bin"]);
        k.git_ok(&dir, &["commit", "-q", "-m", "data"]);
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        urls.push((name, url, dir));
    }
    for (name, url, dir) in &urls {
        let c = bare_clone(&k, url, &format!("{name}-1"), &[]);
        assert_eq!(objects(&k, &c), objects(&k, dir));
    }
    let f = cache_figures(&k, &admin);
    let limit = 700 * 1024;
    assert!(figure(&f, "bytes") <= limit, "{f:?}");
    assert_eq!(figure(&f, "entries"), 2, "{f:?}");
    assert!(
        figure(&f, "evictions_total") >= 1,
        "three 300 KB packs in 700 KiB: {f:?}"
    );
    // `huge` (loose objects: no size known before) was made but not kept; once packed, its
    // size is known and it is not even tried.
    assert_eq!(figure(&f, "produce"), 4, "{f:?}");
    k.cli_ok(&["repo", "maintain", "alice/huge"]);
    let (_, url, dir) = &urls[3];
    let c = bare_clone(&k, url, "huge-2", &[]);
    assert_eq!(objects(&k, &c), objects(&k, dir));
    let f = cache_figures(&k, &admin);
    assert_eq!(
        figure(&f, "bypass"),
        1,
        "the repository larger than the cache is not cached: {f:?}"
    );
    let packs = Path::new(
        k.env_value("KURA_PACK_CACHE_DIR")
            .expect("the harness sets the cache folder"),
    )
    .join("packs");
    let on_disk: u64 = std::fs::read_dir(&packs)
        .expect("the cache folder has packs/")
        .map(|e| e.and_then(|e| e.metadata()).expect("a cache file").len())
        .sum();
    assert_eq!(on_disk, figure(&f, "bytes"));
    // The evicted one (r1, least recently used) is made again, and right.
    let (_, url, dir) = &urls[0];
    let c = bare_clone(&k, url, "r1-2", &[]);
    assert_eq!(objects(&k, &c), objects(&k, dir));
    let g = cache_figures(&k, &admin);
    assert_eq!(figure(&g, "produce"), figure(&f, "produce") + 1, "{g:?}");
}

#[test]
fn a_failed_pack_is_not_kept() {
    let k = Kura::builder(Backend::Sqlite)
        .env("KURA_MAINTENANCE_DEBOUNCE", "0s")
        .env("KURA_MAINTENANCE_INTERVAL", "0s")
        .start();
    let admin = k.token("admin", "read");
    let (_tok, url, dir) = k.alice_app();
    // A few commits: receive-pack keeps them as loose objects.
    k.commit(&dir, "a.txt", "a\n", "a");
    let blob = k
        .git_ok(&dir, &["rev-parse", "HEAD:a.txt"])
        .trim()
        .to_string();
    k.commit(&dir, "b.txt", "b\n", "b");
    k.git_ok(&dir, &["push", "-q", "origin", "main"]);
    let loose = storage(&k, "alice/app")
        .join("objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    assert!(
        loose.is_file(),
        "expected a loose object at {}",
        loose.display()
    );
    let aside = k.root.join("aside");
    std::fs::rename(&loose, &aside).expect("move the object aside");

    let err = k.git_err(&k.work, &["clone", "-q", "--bare", &url, "broken"]);
    assert!(!err.is_empty());
    let f = cache_figures(&k, &admin);
    assert_eq!(figure(&f, "produce"), 1, "{f:?}");
    assert_eq!(
        figure(&f, "entries"),
        0,
        "a failed pack must not be kept: {f:?}"
    );

    // The object back, the same refs, the same request: made again, and right.
    std::fs::rename(&aside, &loose).expect("put the object back");
    let c = bare_clone(&k, &url, "fixed", &[]);
    assert_eq!(objects(&k, &c), objects(&k, &dir));
    let g = cache_figures(&k, &admin);
    assert_eq!(figure(&g, "produce"), 2, "{g:?}");
    assert_eq!(figure(&g, "entries"), 1, "{g:?}");
}
