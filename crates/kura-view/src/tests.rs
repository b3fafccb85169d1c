//! Tests against fixture repositories built with the git CLI: commits are made in a worktree
//! with fixed dates and pushed into a bare repository, which the `Viewer` opens.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::*;

static NEXT: AtomicUsize = AtomicUsize::new(0);

struct Fixture {
    root: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let root =
            std::env::temp_dir().join(format!("kura-view-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("work")).expect("temp dir");
        let fixture = Fixture { root };
        fixture.git_at(&fixture.root, 0, &["init", "-q", "--bare", "bare.git"]);
        fixture.git(0, &["init", "-q", "-b", "main"]);
        fixture
    }

    fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    fn bare(&self) -> PathBuf {
        self.root.join("bare.git")
    }

    fn git_at(&self, dir: &Path, time: i64, args: &[&str]) -> String {
        let date = format!("@{time} +0000");
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Ada Lovelace")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Charles Babbage")
            .env("GIT_COMMITTER_EMAIL", "charles@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn git(&self, time: i64, args: &[&str]) -> String {
        self.git_at(&self.work(), time, args)
    }

    fn write(&self, path: &str, content: impl AsRef<[u8]>) {
        let path = self.work().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    fn commit(&self, time: i64, message: &str) -> String {
        self.git(time, &["add", "-A"]);
        self.git(time, &["commit", "-q", "--allow-empty", "-m", message]);
        self.git(time, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Pushes all branches and tags into the bare repository and opens it.
    fn viewer(&self) -> Viewer {
        let bare = self.bare();
        let bare = bare.to_str().expect("utf-8 temp path");
        self.git(0, &["push", "-q", bare, "--all"]);
        self.git(0, &["push", "-q", bare, "--tags"]);
        Viewer::open(&self.bare()).expect("opens")
    }
}

fn lines(n: usize, tag: &str) -> String {
    (1..=n).map(|i| format!("{tag} line {i}\n")).collect()
}

fn limits() -> Limits {
    Limits {
        max_commits: 10_000,
        deadline: Instant::now() + Duration::from_secs(30),
    }
}

fn diff_limits() -> DiffLimits {
    DiffLimits {
        max_files: 100,
        max_lines: 10_000,
        max_blob_bytes: 100_000,
        deadline: Instant::now() + Duration::from_secs(30),
    }
}

/// The ids of the sample history.
struct Sample {
    fx: Fixture,
    view: Viewer,
    c1: String,
    c2: String,
    c3: String,
    c4: String,
    c5: String,
}

/// main: c1 (initial) - c2 (docs) - c3 (lib edit, tag v1.0) - c5 (rename, binary, delete);
/// release/1.0: c3 - c4 (README). Tag `light` at c2.
fn sample() -> Sample {
    let fx = Fixture::new("sample");
    fx.write("README.md", "# Sample\n\nHello World, hello again.\n");
    fx.write("LICENSE", "Apache-2.0\n");
    fx.write("src/lib.rs", lines(10, "lib"));
    fx.write("src/util.rs", "pub fn util() {}\n// HELLO from util\n");
    fx.write("bin/run.sh", "#!/bin/sh\necho run\n");
    {
        use std::os::unix::fs::PermissionsExt;
        let path = fx.work().join("bin/run.sh");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::symlink("README.md", fx.work().join("link")).expect("symlink");
    }
    fx.write("data.bin", b"\x00\x01\x02binary\x00");
    fx.write("big.txt", ("x".repeat(99) + "\n").repeat(2000));
    fx.write("old.txt", "to be deleted\n");
    let c1 = fx.commit(1000, "initial\n\nThe first commit.");
    fx.write("docs/guide.md", lines(10, "guide"));
    let c2 = fx.commit(2000, "add docs");
    fx.git(2000, &["tag", "light"]);
    let mut lib = lines(10, "lib");
    lib = lib.replace("lib line 5\n", "lib line five\n");
    fx.write("src/lib.rs", lib);
    let c3 = fx.commit(3000, "edit lib");
    fx.git(3000, &["tag", "-a", "v1.0", "-m", "version 1.0"]);
    fx.git(3000, &["checkout", "-q", "-b", "release/1.0"]);
    fx.write(
        "README.md",
        "# Sample (release)\n\nHello World, hello again.\n",
    );
    let c4 = fx.commit(4000, "release tweak");
    fx.git(4000, &["checkout", "-q", "main"]);
    fx.git(5000, &["mv", "docs/guide.md", "docs/manual.md"]);
    fx.write(
        "docs/manual.md",
        lines(10, "guide").replace("guide line 10\n", "guide line ten\n"),
    );
    fx.write("data.bin", b"\x00\x01\x03binary\x00");
    fx.write("new.txt", "brand new\n");
    std::fs::remove_file(fx.work().join("old.txt")).expect("rm");
    let c5 = fx.commit(5000, "rename guide");
    let view = fx.viewer();
    Sample {
        fx,
        view,
        c1,
        c2,
        c3,
        c4,
        c5,
    }
}

#[test]
fn open_and_empty() {
    let fx = Fixture::new("empty");
    let view = Viewer::open(&fx.bare()).expect("opens");
    assert!(view.is_empty().expect("reads"));
    assert!(view.refs(10).expect("refs").branches.is_empty());
    assert!(matches!(
        Viewer::open(&fx.root.join("missing")),
        Err(ViewError::NotFound(_))
    ));

    let s = sample();
    assert!(!s.view.is_empty().expect("reads"));
}

#[test]
fn refs_sorted_newest_first() {
    let s = sample();
    let refs = s.view.refs(10).expect("refs");
    let branches: Vec<(&str, &str)> = refs
        .branches
        .iter()
        .map(|r| (r.name.as_str(), r.commit.id.as_str()))
        .collect();
    assert_eq!(
        branches,
        [("main", s.c5.as_str()), ("release/1.0", s.c4.as_str())]
    );
    let tags: Vec<(&str, &str)> = refs
        .tags
        .iter()
        .map(|r| (r.name.as_str(), r.commit.id.as_str()))
        .collect();
    assert_eq!(tags, [("v1.0", s.c3.as_str()), ("light", s.c2.as_str())]);
    assert_eq!(s.view.refs(1).expect("refs").branches.len(), 1);

    let main = &refs.branches[0].commit;
    assert_eq!(main.title, "rename guide");
    assert_eq!(main.author_name, "Ada Lovelace");
    assert_eq!(main.author_email, "ada@example.com");
    assert_eq!((main.author_time, main.committer_time), (5000, 5000));
}

#[test]
fn resolve_branches_tags_ids() {
    let s = sample();
    let v = &s.view;

    let (rev, path) = v.resolve("main").expect("main");
    assert_eq!(
        (
            rev.name.as_str(),
            rev.kind.clone(),
            rev.commit.as_str(),
            path.as_str()
        ),
        ("main", RevKind::Branch, s.c5.as_str(), "")
    );

    let (rev, path) = v
        .resolve("release/1.0/src/lib.rs")
        .expect("branch with a slash");
    assert_eq!(
        (rev.name.as_str(), rev.kind.clone(), rev.commit.as_str()),
        ("release/1.0", RevKind::Branch, s.c4.as_str())
    );
    assert_eq!(path, "src/lib.rs");

    let (rev, path) = v.resolve("v1.0/README.md").expect("annotated tag");
    assert_eq!(
        (rev.kind.clone(), rev.commit.as_str(), path.as_str()),
        (RevKind::Tag, s.c3.as_str(), "README.md")
    );

    let short = &s.c3[..7];
    let (rev, path) = v.resolve(&format!("{short}/src")).expect("abbreviated id");
    assert_eq!(
        (
            rev.name.as_str(),
            rev.kind.clone(),
            rev.commit.as_str(),
            path.as_str()
        ),
        (short, RevKind::Commit, s.c3.as_str(), "src")
    );
    let (rev, _) = v.resolve(&s.c1.to_uppercase()).expect("full id");
    assert_eq!(rev.commit, s.c1);

    assert!(matches!(v.resolve("nope/x"), Err(ViewError::NotFound(_))));
    assert!(matches!(v.resolve(""), Err(ViewError::NotFound(_))));
    assert!(
        matches!(v.resolve(&s.c1[..6]), Err(ViewError::NotFound(_))),
        "too short for an id"
    );
    assert!(matches!(
        v.resolve("main/../etc"),
        Err(ViewError::Invalid(_))
    ));
    assert!(matches!(
        v.resolve("..\u{1}/x"),
        Err(ViewError::NotFound(_))
    ));

    let rev = v.resolve_rev("light").expect("lightweight tag");
    assert_eq!(
        (rev.kind, rev.commit.as_str()),
        (RevKind::Tag, s.c2.as_str())
    );
    assert!(matches!(
        v.resolve_rev("release"),
        Err(ViewError::NotFound(_))
    ));
    // A tree id is not a commit.
    let tree = v.commit(&s.c1).expect("commit").tree;
    assert!(matches!(v.resolve_rev(&tree), Err(ViewError::NotFound(_))));
}

#[test]
fn tree_entries_and_last_commits() {
    let s = sample();
    let v = &s.view;
    let entries = v.tree(&s.c5, "", Some(&limits())).expect("root");
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bin",
            "docs",
            "src",
            "LICENSE",
            "README.md",
            "big.txt",
            "data.bin",
            "link",
            "new.txt"
        ]
    );
    let last = |name: &str| -> String {
        let entry = entries.iter().find(|e| e.name == name).expect("entry");
        entry.last_commit.as_ref().expect("found").id.clone()
    };
    assert_eq!(last("LICENSE"), s.c1);
    assert_eq!(
        last("README.md"),
        s.c1,
        "the release branch is not reachable from main"
    );
    assert_eq!(last("bin"), s.c1);
    assert_eq!(last("src"), s.c3);
    assert_eq!(last("docs"), s.c5);
    assert_eq!(last("data.bin"), s.c5);
    assert_eq!(last("new.txt"), s.c5);

    let link = entries.iter().find(|e| e.name == "link").expect("link");
    assert_eq!((link.kind, link.size), (EntryKind::Symlink, Some(9)));
    let src = entries.iter().find(|e| e.name == "src").expect("src");
    assert_eq!((src.kind, src.size), (EntryKind::Dir, None));

    let bin = v.tree(&s.c5, "bin", None).expect("bin");
    assert_eq!(bin.len(), 1);
    assert_eq!(
        (bin[0].name.as_str(), bin[0].kind, bin[0].size),
        ("run.sh", EntryKind::Exec, Some(19))
    );
    assert!(bin[0].last_commit.is_none());

    let src = v.tree(&s.c5, "src", Some(&limits())).expect("src");
    let found: Vec<(&str, &str)> = src
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.last_commit.as_ref().map_or("", |c| c.id.as_str()),
            )
        })
        .collect();
    assert_eq!(
        found,
        [("lib.rs", s.c3.as_str()), ("util.rs", s.c1.as_str())]
    );

    let release = v.tree(&s.c4, "", Some(&limits())).expect("release root");
    let readme = release
        .iter()
        .find(|e| e.name == "README.md")
        .expect("readme");
    assert_eq!(readme.last_commit.as_ref().expect("found").id, s.c4);

    // A bound of one commit only credits what c5 changed.
    let bounded = v
        .tree(
            &s.c5,
            "",
            Some(&Limits {
                max_commits: 1,
                deadline: limits().deadline,
            }),
        )
        .expect("bounded");
    let credited: Vec<&str> = bounded
        .iter()
        .filter(|e| e.last_commit.is_some())
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(credited, ["docs", "data.bin", "new.txt"]);

    assert_eq!(v.kind_at(&s.c5, "").expect("root"), EntryKind::Dir);
    assert_eq!(
        v.kind_at(&s.c5, "src/lib.rs").expect("file"),
        EntryKind::File
    );
    assert_eq!(
        v.kind_at(&s.c5, "bin/run.sh").expect("exec"),
        EntryKind::Exec
    );
    assert!(matches!(
        v.kind_at(&s.c5, "src/nope"),
        Err(ViewError::NotFound(_))
    ));
    assert!(matches!(
        v.kind_at(&s.c5, "README.md/x"),
        Err(ViewError::NotFound(_))
    ));
    assert!(matches!(
        v.tree(&s.c5, "README.md", None),
        Err(ViewError::NotFound(_))
    ));
}

#[test]
fn tree_last_commits_through_merges() {
    let fx = Fixture::new("merge");
    fx.write("a.txt", "a\n");
    fx.write("b.txt", "b\n");
    fx.write("c.txt", "c\n");
    let m1 = fx.commit(1000, "m1");
    fx.git(1000, &["checkout", "-q", "-b", "feature"]);
    fx.write("b.txt", "b from feature\n");
    let f1 = fx.commit(2000, "f1");
    // A later side-branch change to c.txt that the merge throws away.
    fx.write("c.txt", "c from feature\n");
    let _f2 = fx.commit(3500, "f2");
    fx.git(2000, &["checkout", "-q", "main"]);
    fx.write("a.txt", "a from main\n");
    let m2 = fx.commit(3000, "m2");
    fx.git(4000, &["merge", "-q", "--no-ff", "--no-commit", "feature"]);
    fx.write("c.txt", "c\n");
    let m3 = fx.commit(4000, "merge feature");
    let v = fx.viewer();

    let entries = v.tree(&m3, "", Some(&limits())).expect("tree");
    let found: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.last_commit.as_ref().map_or("", |c| c.id.as_str()),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("a.txt", m2.as_str()),
            ("b.txt", f1.as_str()),
            ("c.txt", m1.as_str())
        ]
    );

    // Path logs compare with the first parent: the merge brought b.txt in.
    let log = v.log(&m3, Some("b.txt"), 0, 10, &limits()).expect("log");
    let ids: Vec<&str> = log.commits.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [m3.as_str(), f1.as_str(), m1.as_str()]);

    assert_eq!(v.merge_base(&m2, &f1).expect("base"), Some(m1.clone()));
    assert_eq!(
        v.ahead_behind("main", "feature", 100).expect("counts"),
        Some((0, 2))
    );
    assert_eq!(
        v.ahead_behind("feature", "main", 100).expect("counts"),
        Some((2, 0))
    );
}

#[test]
fn blobs() {
    let s = sample();
    let v = &s.view;
    let readme = v.blob(&s.c5, "README.md", 1 << 20).expect("readme");
    assert_eq!(readme.data, b"# Sample\n\nHello World, hello again.\n");
    assert_eq!(
        (readme.size, readme.truncated, readme.binary),
        (36, false, false)
    );

    let bin = v.blob(&s.c5, "data.bin", 1 << 20).expect("binary");
    assert!(bin.binary);
    assert_eq!(bin.data, b"\x00\x01\x03binary\x00");

    let big = v.blob(&s.c5, "big.txt", 1000).expect("big");
    assert_eq!(
        (big.size, big.truncated, big.data.len(), big.binary),
        (200_000, true, 0, false)
    );

    let mut out = Vec::new();
    assert!(matches!(
        v.write_blob(&big.id, 1000, &mut out),
        Err(ViewError::TooLarge(_))
    ));
    assert_eq!(
        v.write_blob(&big.id, 1 << 20, &mut out).expect("written"),
        200_000
    );
    assert_eq!(out.len(), 200_000);
    let link = v.blob(&s.c5, "link", 100).expect("symlink");
    assert_eq!(link.data, b"README.md");

    assert!(matches!(
        v.blob(&s.c5, "src", 100),
        Err(ViewError::NotFound(_))
    ));
    assert!(matches!(
        v.blob(&s.c5, "nope.txt", 100),
        Err(ViewError::NotFound(_))
    ));
    assert!(matches!(
        v.blob(&s.c5, "../etc/passwd", 100),
        Err(ViewError::Invalid(_))
    ));
    assert!(matches!(
        v.blob(&s.c5, "/README.md", 100),
        Err(ViewError::Invalid(_))
    ));
    assert!(matches!(
        v.blob(&s.c5, "src//lib.rs", 100),
        Err(ViewError::Invalid(_))
    ));
    assert!(matches!(
        v.blob(&s.c5, "a\0b", 100),
        Err(ViewError::Invalid(_))
    ));
    assert!(matches!(
        v.blob("zz", "README.md", 100),
        Err(ViewError::Invalid(_))
    ));
    assert!(matches!(
        v.blob(&"0".repeat(40), "README.md", 100),
        Err(ViewError::NotFound(_))
    ));
    assert!(matches!(
        v.write_blob(&"1".repeat(40), 100, &mut out),
        Err(ViewError::NotFound(_))
    ));
    // A commit id is not a blob.
    assert!(matches!(
        v.write_blob(&s.c1, 1 << 20, &mut out),
        Err(ViewError::NotFound(_))
    ));
}

#[test]
fn logs_and_commits() {
    let s = sample();
    let v = &s.view;
    let ids = |page: &LogPage| {
        page.commits
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<String>>()
    };

    let all = v.log(&s.c5, None, 0, 10, &limits()).expect("log");
    assert_eq!(
        ids(&all),
        [s.c5.clone(), s.c3.clone(), s.c2.clone(), s.c1.clone()]
    );
    assert!(!all.has_more && !all.truncated);

    let first = v.log(&s.c5, None, 0, 2, &limits()).expect("page 1");
    assert_eq!(ids(&first), [s.c5.clone(), s.c3.clone()]);
    assert!(first.has_more);
    let second = v.log(&s.c5, None, 2, 2, &limits()).expect("page 2");
    assert_eq!(ids(&second), [s.c2.clone(), s.c1.clone()]);
    assert!(!second.has_more);

    let lib = v
        .log(&s.c5, Some("src/lib.rs"), 0, 10, &limits())
        .expect("path log");
    assert_eq!(ids(&lib), [s.c3.clone(), s.c1.clone()]);
    let docs = v
        .log(&s.c5, Some("docs"), 0, 1, &limits())
        .expect("dir log");
    assert_eq!(ids(&docs), vec![s.c5.clone()]);
    assert!(docs.has_more);
    let readme = v
        .log(&s.c4, Some("README.md"), 0, 10, &limits())
        .expect("release log");
    assert_eq!(ids(&readme), [s.c4.clone(), s.c1.clone()]);

    let bounded = v.log(
        &s.c5,
        Some("src/lib.rs"),
        0,
        10,
        &Limits {
            max_commits: 2,
            deadline: limits().deadline,
        },
    );
    let bounded = bounded.expect("bounded");
    assert_eq!(ids(&bounded), vec![s.c3.clone()]);
    assert!(bounded.truncated && !bounded.has_more);
    assert!(matches!(
        v.log(&s.c5, Some("a/../b"), 0, 10, &limits()),
        Err(ViewError::Invalid(_))
    ));
    assert!(matches!(
        v.log(&"f".repeat(40), None, 0, 10, &limits()),
        Err(ViewError::NotFound(_))
    ));

    let c1 = v.commit(&s.c1).expect("commit");
    assert_eq!(c1.info.title, "initial");
    assert_eq!(c1.message, "initial\n\nThe first commit.\n");
    assert_eq!(
        (c1.committer_name.as_str(), c1.committer_email.as_str()),
        ("Charles Babbage", "charles@example.com")
    );
    assert!(c1.parents.is_empty());
    assert_eq!(c1.tree.len(), 40);
    assert_eq!(v.commit(&s.c5).expect("c5").parents, vec![s.c3.clone()]);

    assert_eq!(
        v.merge_base(&s.c5, &s.c4).expect("base"),
        Some(s.c3.clone())
    );
    assert_eq!(
        v.merge_base(&s.c1, &s.c5).expect("base"),
        Some(s.c1.clone())
    );
    assert_eq!(
        v.ahead_behind("main", "release/1.0", 100).expect("counts"),
        Some((1, 1))
    );
    assert_eq!(
        v.ahead_behind(&s.c1, "main", 100).expect("counts"),
        Some((3, 0))
    );
    assert_eq!(
        v.ahead_behind("main", "main", 100).expect("counts"),
        Some((0, 0))
    );
    assert_eq!(v.ahead_behind(&s.c1, "main", 2).expect("bounded"), None);
}

#[test]
fn diffs() {
    let s = sample();
    let v = &s.view;
    let d = v.diff(Some(&s.c3), &s.c5, &diff_limits()).expect("diff");
    assert!(!d.truncated);
    let summary: Vec<(Option<&str>, Option<&str>, FileStatus)> = d
        .files
        .iter()
        .map(|f| (f.old_path.as_deref(), f.new_path.as_deref(), f.status))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("data.bin"), Some("data.bin"), FileStatus::Modified),
            (
                Some("docs/guide.md"),
                Some("docs/manual.md"),
                FileStatus::Renamed
            ),
            (None, Some("new.txt"), FileStatus::Added),
            (Some("old.txt"), None, FileStatus::Deleted),
        ]
    );
    assert!(d.files[0].binary && d.files[0].hunks.is_empty());
    let renamed = &d.files[1];
    assert_eq!((renamed.added, renamed.removed), (1, 1));
    assert_eq!(renamed.hunks.len(), 1);
    assert_eq!(renamed.hunks[0].header, "@@ -7,4 +7,4 @@");
    let kinds: Vec<(LineKind, Option<u32>, Option<u32>, &str)> = renamed.hunks[0]
        .lines
        .iter()
        .map(|l| (l.kind, l.old_no, l.new_no, l.text.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (LineKind::Context, Some(7), Some(7), "guide line 7"),
            (LineKind::Context, Some(8), Some(8), "guide line 8"),
            (LineKind::Context, Some(9), Some(9), "guide line 9"),
            (LineKind::Removed, Some(10), None, "guide line 10"),
            (LineKind::Added, None, Some(10), "guide line ten"),
        ]
    );
    assert_eq!(d.files[2].hunks[0].header, "@@ -0,0 +1 @@");
    assert_eq!((d.files[2].added, d.files[2].removed), (1, 0));
    assert_eq!(d.files[3].hunks[0].header, "@@ -1 +0,0 @@");

    // A root commit against the empty tree: everything added, the big file not diffed.
    let root = v.diff(None, &s.c1, &diff_limits()).expect("root diff");
    assert!(root
        .files
        .iter()
        .all(|f| f.status == FileStatus::Added && f.old_path.is_none()));
    let big = root
        .files
        .iter()
        .find(|f| f.new_path.as_deref() == Some("big.txt"))
        .expect("big");
    assert!(big.too_large && big.hunks.is_empty());
    let lib = root
        .files
        .iter()
        .find(|f| f.new_path.as_deref() == Some("src/lib.rs"))
        .expect("lib");
    assert_eq!(
        (lib.added, lib.hunks[0].header.as_str()),
        (10, "@@ -0,0 +1,10 @@")
    );
    let link = root
        .files
        .iter()
        .find(|f| f.new_path.as_deref() == Some("link"))
        .expect("link");
    assert_eq!(link.hunks[0].lines[0].text, "README.md");

    // The line bound: later files keep their counts but lose their hunks.
    let tight = DiffLimits {
        max_lines: 12,
        ..diff_limits()
    };
    let cut = v.diff(None, &s.c1, &tight).expect("cut");
    assert!(cut.truncated);
    let shown: usize = cut
        .files
        .iter()
        .flat_map(|f| &f.hunks)
        .map(|h| h.lines.len())
        .sum();
    assert!(shown <= 12, "{shown} lines shown");
    let lib = cut
        .files
        .iter()
        .find(|f| f.new_path.as_deref() == Some("src/lib.rs"))
        .expect("lib");
    assert!(lib.truncated && lib.hunks.is_empty() && lib.added == 10);

    let few = v
        .diff(
            None,
            &s.c1,
            &DiffLimits {
                max_files: 2,
                ..diff_limits()
            },
        )
        .expect("few");
    assert!(few.truncated);
    assert_eq!(few.files.len(), 2);

    assert!(matches!(
        v.diff(Some("nothex"), &s.c1, &diff_limits()),
        Err(ViewError::Invalid(_))
    ));
}

#[test]
fn diff_hunks_match_git() {
    let fx = Fixture::new("hunks");
    let before: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    fx.write("f.txt", &before);
    let a = fx.commit(1000, "a");
    let after = before
        .replace("line 2\n", "line two\n")
        .replace("line 8\n", "")
        .replace("line 20\n", "line 20\ninserted\n")
        .replace("line 39\n", "line 39 changed\n");
    fx.write("f.txt", after);
    let b = fx.commit(2000, "b");
    let v = fx.viewer();

    let git = fx.git(0, &["diff", "-U3", &a, &b]);
    let expected: Vec<String> = git
        .lines()
        .filter(|l| l.starts_with("@@"))
        .map(|l| l.splitn(3, "@@").take(2).collect::<Vec<_>>().join("@@") + "@@")
        .collect();
    let d = v.diff(Some(&a), &b, &diff_limits()).expect("diff");
    let got: Vec<&str> = d.files[0].hunks.iter().map(|h| h.header.as_str()).collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 3, "two nearby changes share a hunk");
    let body: Vec<String> = git
        .lines()
        .skip_while(|l| !l.starts_with("@@"))
        .filter(|l| !l.starts_with("@@"))
        .map(str::to_owned)
        .collect();
    let ours: Vec<String> = d.files[0]
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .map(|l| {
            let sign = match l.kind {
                LineKind::Context => ' ',
                LineKind::Added => '+',
                LineKind::Removed => '-',
            };
            format!("{sign}{}", l.text)
        })
        .collect();
    assert_eq!(ours, body);
}

#[test]
fn blame_attributes_lines() {
    let s = sample();
    let hunks = s.view.blame(&s.c5, "src/lib.rs", &limits()).expect("blame");
    let got: Vec<(&str, u32, u32)> = hunks
        .iter()
        .map(|h| (h.commit.id.as_str(), h.start_line, h.lines))
        .collect();
    assert_eq!(
        got,
        [
            (s.c1.as_str(), 1, 4),
            (s.c3.as_str(), 5, 1),
            (s.c1.as_str(), 6, 5)
        ]
    );
    assert_eq!(hunks[1].commit.title, "edit lib");

    // Follows the rename.
    let manual = s
        .view
        .blame(&s.c5, "docs/manual.md", &limits())
        .expect("renamed");
    let got: Vec<(&str, u32, u32)> = manual
        .iter()
        .map(|h| (h.commit.id.as_str(), h.start_line, h.lines))
        .collect();
    assert_eq!(got, [(s.c2.as_str(), 1, 9), (s.c5.as_str(), 10, 1)]);

    // Bounded to one commit: what is older is credited to the first commit past the bound.
    let one = Limits {
        max_commits: 1,
        deadline: limits().deadline,
    };
    let bounded = s.view.blame(&s.c5, "src/lib.rs", &one).expect("bounded");
    assert!(bounded.iter().all(|h| h.commit.id == s.c3), "{bounded:?}");
    assert_eq!(bounded.iter().map(|h| h.lines).sum::<u32>(), 10);

    assert!(s
        .view
        .blame(&s.c5, "data.bin", &limits())
        .expect("binary")
        .is_empty());
    assert!(matches!(
        s.view.blame(&s.c5, "src", &limits()),
        Err(ViewError::NotFound(_))
    ));
    assert!(matches!(
        s.view.blame(&s.c5, "nope", &limits()),
        Err(ViewError::NotFound(_))
    ));
    assert!(matches!(
        s.view.blame(&s.c5, "", &limits()),
        Err(ViewError::Invalid(_))
    ));
    let past = Limits {
        max_commits: 100,
        deadline: Instant::now(),
    };
    assert!(matches!(
        s.view.blame(&s.c5, "src/lib.rs", &past),
        Err(ViewError::TooLarge(_))
    ));
}

fn search_limits() -> SearchLimits {
    SearchLimits {
        max_matches: 100,
        max_files: 100,
        max_file_bytes: 100_000,
        deadline: Instant::now() + Duration::from_secs(30),
    }
}

#[test]
fn grep_case_insensitive() {
    let s = sample();
    let v = &s.view;
    let r = v.grep(&s.c5, "hello", &search_limits()).expect("grep");
    assert!(!r.truncated);
    let files: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, ["README.md", "src/util.rs"]);
    let readme = &r.files[0].lines;
    assert_eq!(readme.len(), 1);
    assert_eq!(
        (readme[0].line_no, readme[0].text.as_str()),
        (3, "Hello World, hello again.")
    );
    assert_eq!(readme[0].ranges, [(0, 5), (13, 18)]);
    let util = &r.files[1].lines[0];
    assert_eq!(
        (util.line_no, &util.text[util.ranges[0].0..util.ranges[0].1]),
        (2, "HELLO")
    );

    // The symlink pointing at README.md is not searched; neither is the binary nor the big file.
    assert!(v
        .grep(&s.c5, "binary", &search_limits())
        .expect("grep")
        .files
        .is_empty());
    assert!(v
        .grep(&s.c5, "xxxx", &search_limits())
        .expect("grep")
        .files
        .is_empty());
    let big = SearchLimits {
        max_file_bytes: 1 << 20,
        max_matches: 3,
        ..search_limits()
    };
    let r = v.grep(&s.c5, "xxxx", &big).expect("grep");
    assert!(r.truncated);
    assert_eq!(
        r.files[0]
            .lines
            .iter()
            .map(|l| l.line_no)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        r.files[0].lines[0].ranges.len(),
        24,
        "non-overlapping matches within a line"
    );

    let one = SearchLimits {
        max_matches: 1,
        ..search_limits()
    };
    let r = v.grep(&s.c5, "HELLO", &one).expect("grep");
    assert!(r.truncated);
    assert_eq!(r.files.len(), 1);
    // Five files read: LICENSE, README.md, bin/run.sh, data.bin, docs/manual.md (big.txt is
    // skipped by its size, the symlink not read); new.txt would be the sixth.
    let five_files = SearchLimits {
        max_files: 5,
        ..search_limits()
    };
    let r = v.grep(&s.c5, "line", &five_files).expect("grep");
    assert!(r.truncated);
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].path, "docs/manual.md");
    assert_eq!(r.files[0].lines.len(), 10);
    assert!(matches!(
        v.grep(&s.c5, "", &search_limits()),
        Err(ViewError::Invalid(_))
    ));
}

#[test]
fn grep_cuts_long_lines() {
    let fx = Fixture::new("long");
    let line = format!("{}Needle{}\n", "é".repeat(400), "b".repeat(400));
    fx.write("long.txt", format!("short\n{line}"));
    fx.write("bad.txt", b"\xff\xfe needle \xff\n");
    let c = fx.commit(1000, "long");
    let v = fx.viewer();
    let r = v.grep(&c, "needle", &search_limits()).expect("grep");
    let bad = &r.files[0].lines[0];
    assert_eq!(&bad.text[bad.ranges[0].0..bad.ranges[0].1], "needle");
    assert!(bad.text.starts_with('\u{fffd}'));
    let long = &r.files[1].lines[0];
    assert_eq!(long.line_no, 2);
    assert_eq!(long.text.chars().count(), 500);
    assert_eq!(&long.text[long.ranges[0].0..long.ranges[0].1], "Needle");
    assert!(long.text.starts_with('é'));
}

#[test]
fn find_files_by_path() {
    let s = sample();
    let v = &s.view;
    assert_eq!(
        v.find_files(&s.c5, "LIB", 10).expect("find"),
        ["src/lib.rs"]
    );
    assert_eq!(
        v.find_files(&s.c5, "s", 3).expect("find"),
        ["LICENSE", "bin/run.sh", "src/lib.rs"]
    );
    assert_eq!(
        v.find_files(&s.c5, ".md", 10).expect("find"),
        ["README.md", "docs/manual.md"]
    );
    assert!(v.find_files(&s.c5, "zzz", 10).expect("find").is_empty());
    assert!(v.find_files(&s.c5, "", 0).expect("find").is_empty());
}

#[test]
fn archives() {
    let s = sample();
    let dir = s.fx.root.join("out");
    std::fs::create_dir_all(&dir).expect("mkdir");

    let mut tgz = Vec::new();
    s.view
        .archive(&s.c5, ArchiveFormat::TarGz, "sample-main/", &mut tgz)
        .expect("tar.gz");
    let path = dir.join("a.tar.gz");
    std::fs::write(&path, &tgz).expect("write");
    let out = Command::new("tar")
        .arg("tvzf")
        .arg(&path)
        .env("TZ", "UTC")
        .output()
        .expect("tar runs");
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    for name in [
        "sample-main/README.md",
        "sample-main/src/lib.rs",
        "sample-main/docs/manual.md",
        "sample-main/data.bin",
    ] {
        assert!(listing.contains(name), "{name} missing from {listing}");
    }
    assert!(!listing.contains("old.txt"));
    let exec = listing
        .lines()
        .find(|l| l.ends_with("sample-main/bin/run.sh"))
        .expect("run.sh");
    assert!(exec.starts_with("-rwxr-xr-x"), "{exec}");
    let link = listing
        .lines()
        .find(|l| l.contains("sample-main/link"))
        .expect("link");
    assert!(
        link.starts_with('l') && link.ends_with("-> README.md"),
        "{link}"
    );
    assert!(
        listing.contains("1970-01-01 01:23"),
        "the commit time: {listing}"
    );

    let mut zip = Vec::new();
    s.view
        .archive(&s.c5, ArchiveFormat::Zip, "z/", &mut zip)
        .expect("zip");
    let path = dir.join("a.zip");
    std::fs::write(&path, &zip).expect("write");
    let out = Command::new("python3")
        .args(["-m", "zipfile", "-l"])
        .arg(&path)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    for name in ["z/README.md", "z/src/lib.rs", "z/bin/run.sh", "z/big.txt"] {
        assert!(listing.contains(name), "{name} missing from {listing}");
    }
    let out = Command::new("python3")
        .args(["-m", "zipfile", "-t"])
        .arg(&path)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "zip test failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let mut sink = Vec::new();
    assert!(matches!(
        s.view
            .archive(&s.c5, ArchiveFormat::Zip, "../x/", &mut sink),
        Err(ViewError::Invalid(_))
    ));
    assert!(matches!(
        s.view
            .archive(&"0".repeat(40), ArchiveFormat::TarGz, "", &mut sink),
        Err(ViewError::NotFound(_))
    ));
}

#[test]
fn packed_repository_with_commit_graph() {
    let s = sample();
    s.fx.git_at(&s.fx.bare(), 0, &["gc", "-q"]);
    s.fx.git_at(&s.fx.bare(), 0, &["commit-graph", "write", "--reachable"]);
    let v = Viewer::open(&s.fx.bare()).expect("reopen");
    let entries = v.tree(&s.c5, "", Some(&limits())).expect("root");
    let license = entries
        .iter()
        .find(|e| e.name == "LICENSE")
        .expect("license");
    assert_eq!(license.last_commit.as_ref().expect("found").id, s.c1);
    let log = v
        .log(&s.c5, Some("src/lib.rs"), 0, 10, &limits())
        .expect("log");
    assert_eq!(log.commits.len(), 2);
    assert_eq!(
        v.resolve(&format!("{}/src", &s.c3[..8]))
            .expect("abbrev")
            .0
            .commit,
        s.c3
    );
    assert_eq!(v.refs(10).expect("packed refs").tags.len(), 2);
    assert_eq!(
        v.ahead_behind("main", "release/1.0", 100).expect("counts"),
        Some((1, 1))
    );
}

#[test]
fn murmur3_matches_known_values() {
    use crate::bloom::murmur3;
    // Standard murmur3_32 vectors, git's t0095 values, and a Python reference implementation.
    let cases: [(u32, &[u8], u32); 11] = [
        (0, b"", 0),
        (1, b"", 0x514e_28b7),
        (0xffff_ffff, b"", 0x81f1_6f39),
        (0, b"Hello world!", 0x627b_0c2c),
        (
            0,
            b"The quick brown fox jumps over the lazy dog",
            0x2e4f_f723,
        ),
        (
            0x9747_b28c,
            b"The quick brown fox jumps over the lazy dog",
            0x2fa8_26cd,
        ),
        (1234, b"Hello, world!", 0xfaf6_cdb3),
        (0x293a_e76f, b"src/m00", 0xc5c5_0062),
        (0x7e64_6e2c, "caf\u{e9}.txt".as_bytes(), 0x6b3b_1c67),
        (0, b"abc", 0xb3dd_93fa),
        (0, b"abcd", 0x43ed_676a),
    ];
    for (seed, data, want) in cases {
        assert_eq!(murmur3(seed, data), want, "{seed:#x} {data:?}");
    }
}

/// A linear `main` touching files, nested folders, renames, deletions, a file replaced by a
/// folder, a non-ASCII name and one commit of 600 files (over git's 512-path filter limit),
/// plus a `side` branch merged into `merged`; the bare repository gets a commit-graph with
/// changed-path filters.
fn bloom_fixture() -> (Fixture, Viewer, String, String) {
    let fx = Fixture::new("bloom");
    let t = std::cell::Cell::new(1000);
    let commit = |fx: &Fixture, message: &str| {
        t.set(t.get() + 100);
        fx.commit(t.get(), message)
    };
    fx.write("README.md", "readme\n");
    fx.write("src/a/one.rs", "1\n");
    fx.write("src/a/b/two.rs", "2\n");
    fx.write("src/c/three.rs", "3\n");
    fx.write("docs/guide.md", "guide\n");
    commit(&fx, "initial");
    for i in 0..12 {
        match i % 4 {
            0 => fx.write("src/a/one.rs", format!("1 v{i}\n")),
            1 => fx.write("src/a/b/two.rs", format!("2 v{i}\n")),
            2 => fx.write("src/c/three.rs", format!("3 v{i}\n")),
            _ => fx.write(&format!("src/c/new{i}.rs"), "new\n"),
        }
        commit(&fx, &format!("edit {i}"));
    }
    fx.git(0, &["mv", "docs/guide.md", "docs/manual.md"]);
    commit(&fx, "rename");
    std::fs::remove_file(fx.work().join("src/c/three.rs")).expect("rm");
    commit(&fx, "delete");
    fx.write("caf\u{e9}/men\u{fc}.txt", "menu\n");
    commit(&fx, "non-ascii");
    std::fs::remove_file(fx.work().join("README.md")).expect("rm");
    fx.write("README.md/inner.md", "now a folder\n");
    commit(&fx, "file to folder");
    for i in 0..600 {
        fx.write(&format!("bulk/f{i}.txt"), format!("{i}\n"));
    }
    commit(&fx, "bulk");
    commit(&fx, "empty");
    fx.write("src/a/one.rs", "1 last\n");
    let main = commit(&fx, "last");
    let t = t.get();
    fx.git(t, &["checkout", "-q", "-b", "side", "HEAD~5"]);
    fx.write("src/a/b/two.rs", "2 side\n");
    fx.write("src/d/four.rs", "4\n");
    commit(&fx, "side");
    fx.git(t, &["checkout", "-q", "-b", "merged", "main"]);
    fx.git(t, &["merge", "-q", "--no-ff", "-m", "merge side", "side"]);
    let merged = fx.git(t, &["rev-parse", "HEAD"]).trim().to_owned();
    fx.git(t, &["checkout", "-q", "main"]);
    let v = fx.viewer();
    fx.git_at(
        &fx.bare(),
        0,
        &["commit-graph", "write", "--reachable", "--changed-paths"],
    );
    let v2 = Viewer::open(&fx.bare()).expect("reopen");
    drop(v);
    (fx, v2, main, merged)
}

const BLOOM_PATHS: [&str; 16] = [
    "README.md",
    "README.md/inner.md",
    "src",
    "src/a",
    "src/a/one.rs",
    "src/a/b",
    "src/a/b/two.rs",
    "src/c/three.rs",
    "src/c",
    "src/d/four.rs",
    "docs/guide.md",
    "docs/manual.md",
    "caf\u{e9}/men\u{fc}.txt",
    "bulk/f7.txt",
    "never/there.rs",
    "src/a/never.rs",
];

fn log_ids(v: &Viewer, start: &str, path: &str) -> Vec<String> {
    let log = v.log(start, Some(path), 0, 1000, &limits()).expect("log");
    assert!(!log.truncated && !log.has_more);
    log.commits.into_iter().map(|c| c.id).collect()
}

#[test]
fn path_logs_same_with_bloom_filters() {
    let (fx, v, main, merged) = bloom_fixture();
    assert!(v.filters().is_some(), "filters read");
    let plain = v.without_filters();
    assert!(plain.filters().is_none());
    for path in BLOOM_PATHS {
        let with = log_ids(&v, &main, path);
        assert_eq!(with, log_ids(&plain, &main, path), "{path}");
        // Linear history: git's simplification is the same first-parent comparison.
        let git: Vec<String> = fx
            .git_at(&fx.bare(), 0, &["log", "--format=%H", &main, "--", path])
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(with, git, "{path}");
        assert_eq!(
            log_ids(&v, &merged, path),
            log_ids(&plain, &merged, path),
            "{path}"
        );
    }
    assert_eq!(log_ids(&v, &main, "src/a/one.rs").len(), 5);
}

#[test]
fn tree_last_commits_same_with_bloom_filters() {
    let (_fx, v, main, merged) = bloom_fixture();
    let plain = v.without_filters();
    let last = |v: &Viewer, start: &str, path: &str| -> Vec<(String, Option<String>)> {
        v.tree(start, path, Some(&limits()))
            .expect("tree")
            .into_iter()
            .map(|e| (e.name, e.last_commit.map(|c| c.id)))
            .collect()
    };
    for start in [&main, &merged] {
        for path in [
            "",
            "src",
            "src/a",
            "src/a/b",
            "src/c",
            "docs",
            "bulk",
            "caf\u{e9}",
        ] {
            if v.kind_at(start, path).ok() != Some(EntryKind::Dir) {
                continue;
            }
            let with = last(&v, start, path);
            assert!(with.iter().all(|(_, c)| c.is_some()), "{path}");
            assert_eq!(with, last(&plain, start, path), "{path}");
        }
    }
}

#[test]
fn bloom_filters_of_a_real_graph() {
    let (fx, v, _, _) = bloom_fixture();
    let filters = v.filters().expect("filters");
    let commits = fx.git_at(&fx.bare(), 0, &["rev-list", "--all"]);
    let (mut asked, mut maybe) = (0, 0);
    for commit in commits.lines() {
        let id = crate::commits::parse_id(commit).expect("id");
        let changed = fx.git_at(
            &fx.bare(),
            0,
            &[
                "diff-tree",
                "--no-commit-id",
                "--name-only",
                "-r",
                "--root",
                commit,
            ],
        );
        let changed: Vec<&str> = changed.lines().collect();
        for path in changed.iter().take(20) {
            // diff-tree quotes non-ASCII names; those are covered by the log tests.
            if path.starts_with('"') {
                continue;
            }
            let segments: Vec<&str> = path.split('/').collect();
            let keys = filters.keys(&segments).expect("keys");
            assert!(filters.maybe_changed(&id, &keys), "{commit} {path}");
        }
        for i in 0..50 {
            let path = format!("unrelated{i}/file{i}.txt");
            let keys = filters.keys(&[&path]).expect("keys");
            asked += 1;
            if filters.maybe_changed(&id, &keys) {
                maybe += 1;
            }
        }
        // Over 512 changes: git stores a filter with every bit set.
        if changed.len() > 512 {
            let keys = filters.keys(&["nowhere"]).expect("keys");
            assert!(filters.maybe_changed(&id, &keys));
        }
    }
    // Only the bulk commit and rare false positives say "maybe".
    assert!(maybe * 10 < asked, "{maybe} of {asked}");
    // Unknown commits are "maybe".
    let keys = filters.keys(&["src"]).expect("keys");
    assert!(filters.maybe_changed(&gix::ObjectId::null(gix::hash::Kind::Sha1), &keys));
}
