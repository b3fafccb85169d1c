//! Faults: Kura killed (-9) at any moment of a push, and a full disk on the data path. The
//! repository stays fsck-clean, every push git reported done is there, and service goes on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;

/// `git fsck --strict` of the only bare repository under the data folder.
fn fsck_clean(data_dir: &Path) {
    let repos = bare_repos(data_dir);
    assert!(
        !repos.is_empty(),
        "no repository under {}",
        data_dir.display()
    );
    for r in repos {
        let out = cmd(
            "git",
            &[
                "-C",
                &r.display().to_string(),
                "fsck",
                "--strict",
                "--no-progress",
            ],
        )
        .run();
        assert!(
            out.ok(),
            "git fsck of {} failed:\n{}",
            r.display(),
            out.all()
        );
    }
}

both! {
    /// kill -9 before, during and after the ref update of a push: after a restart the
    /// repository is consistent and every push that git reported done is present.
    fn kill9_during_pushes(b: Backend) {
        let mut k = Kura::start(b);
        let (tok, _, dir) = k.alice_app();
        k.commit(&dir, "a.txt", "0\n", "zero");
        k.git_ok(&dir, &["push", "-q", "origin", "main"]);
        for (i, delay_ms) in [0u64, 30, 80, 150, 300, 600].into_iter().enumerate() {
            // a few MB so the push takes a moment
            random_file(&dir.join(format!("blob{i}")), 3);
            k.git_ok(&dir, &["add", &format!("blob{i}")]);
            let c = k.commit(&dir, &format!("f{i}.txt"), &format!("{i}\n"), &format!("push {i}"));
            let url = k.url_auth("alice", &tok, "alice/app.git");
            let pusher = {
                let g = k.git_cmd(&dir, &["push", "-q", &url, "main"]);
                std::thread::spawn(move || g.run())
            };
            std::thread::sleep(Duration::from_millis(delay_ms));
            k.kill9();
            let pushed = pusher.join().expect("push thread").ok();
            // git children of the killed server may still be finishing their ref update
            std::thread::sleep(Duration::from_millis(500));
            k.spawn();
            fsck_clean(&k.data_dir);
            let remote = k.remote_ref(&k.url_auth("alice", &tok, "alice/app.git"), "refs/heads/main");
            if pushed {
                assert_eq!(remote.as_deref(), Some(c.as_str()), "push {i} was acknowledged but is missing");
            }
            // bring the server up to date for the next round (a refused or lost push is redone)
            k.git_ok(&dir, &["push", "-q", &k.url_auth("alice", &tok, "alice/app.git"), "main"]);
        }
        fsck_clean(&k.data_dir);
    }
}

/// A tmpfs mounted on `path` for the test's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, mb: u64) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let out = cmd(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0700"),
                "tmpfs",
                &path.display().to_string(),
            ],
        )
        .run();
        assert!(
            out.ok(),
            "the disk-full test mounts a small tmpfs and needs root (mount -t tmpfs): {}",
            out.all()
        );
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = cmd("umount", &["-l", &self.0.display().to_string()]).run();
    }
}

/// The data path fills up during a push: the push is refused with git's message, the
/// repository stays fsck-clean, and once the space is back pushes work again.
#[test]
fn disk_full_on_the_data_path() {
    let mut k = Kura::builder(Backend::Sqlite).prepare();
    let _fs = Tmpfs::mount(&k.data_dir, 40);
    k.spawn();
    let (_, url, dir) = k.alice_app();
    let c1 = k.commit(&dir, "a.txt", "1\n", "one");
    k.git_ok(&dir, &["push", "-q", "origin", "main"]);
    random_file(&dir.join("big.bin"), 60);
    k.git_ok(&dir, &["add", "big.bin"]);
    k.commit(&dir, "b.txt", "2\n", "too big for the disk");
    let out = k.git(&dir, &["push", "origin", "main"]);
    assert!(
        !out.ok(),
        "a 60 MB push onto a 40 MB disk succeeded?\n{}",
        out.all()
    );
    assert_eq!(
        k.remote_ref(&url, "refs/heads/main").as_deref(),
        Some(c1.as_str()),
        "main unchanged"
    );
    fsck_clean(&k.data_dir);
    assert_eq!(k.get("/healthz").status, 200, "still serving");
    // the space is back once the refused push's quarantine is gone: a small push works
    k.git_ok(&dir, &["reset", "-q", "--hard", &c1]);
    let c3 = k.commit(&dir, "c.txt", "3\n", "small");
    k.git_ok(&dir, &["push", "-q", "origin", "main"]);
    assert_eq!(
        k.remote_ref(&url, "refs/heads/main").as_deref(),
        Some(c3.as_str())
    );
    k.stop_sigterm();
}

/// A PostgreSQL server of the test's own (initdb as user postgres on a free port), so that
/// restarting it disturbs no other test.
struct OwnPostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl OwnPostgres {
    fn start() -> OwnPostgres {
        let base = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's binaries under /usr/lib/postgresql (Debian's postgresql package)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(format!(
            "kura-own-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("pg dir");
        cmd("chown", &["postgres:postgres", &dir.display().to_string()])
            .run()
            .assert_ok();
        let pg = OwnPostgres {
            dir,
            port: free_port(),
            bin: base,
        };
        pg.as_postgres(&[
            &pg.tool("initdb"),
            "-D",
            &pg.data(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])
        .assert_ok();
        pg.ctl("start");
        pg
    }
    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }
    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }
    fn as_postgres(&self, args: &[&str]) -> Out {
        let mut a = vec!["-u", "postgres", "--"];
        a.extend_from_slice(args);
        cmd("runuser", &a).run()
    }
    fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.as_postgres(&[
            &self.tool("pg_ctl"),
            "-D",
            &self.data(),
            "-l",
            &log,
            "-o",
            &opts,
            "-w",
            "-m",
            "fast",
            action,
        ])
        .assert_ok();
    }
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.as_postgres(&[
            &self.tool("pg_ctl"),
            "-D",
            &self.data(),
            "-m",
            "immediate",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The database goes away under load for longer than Kura waits for a connection: requests
/// fail with a clear 503 meanwhile, and once it is back Kura serves again without a restart.
#[test]
fn database_restart_under_load() {
    let pg = OwnPostgres::start();
    let k = Kura::builder(Backend::Sqlite)
        .env("KURA_DATABASE_URL", &pg.url())
        .start();
    let (tok, url, dir) = k.alice_app();
    k.commit(&dir, "a.txt", "1\n", "one");
    k.git_ok(&dir, &["push", "-q", "origin", "main"]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = k.req("GET", "/api/v1/repos/alice/app").bearer(&tok).send();
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((r.status, r.text()));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        pg.ctl("stop");
        // longer than Kura waits for a connection (5 s): requests must fail, not hang
        std::thread::sleep(Duration::from_secs(8));
        pg.ctl("start");
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let seen = seen.into_inner().unwrap_or_else(|p| p.into_inner());
    let failed: Vec<_> = seen.iter().filter(|(st, _)| *st != 200).collect();
    assert!(
        !failed.is_empty(),
        "no request failed while the database was down?"
    );
    for (st, text) in &failed {
        assert_eq!(
            *st, 503,
            "a clear 503 while the database is down, got {st}: {text}"
        );
        assert!(
            text.contains("database"),
            "the answer says what is wrong: {text}"
        );
    }
    assert_eq!(
        seen.last().map(|(st, _)| *st),
        Some(200),
        "served again after the restart"
    );
    let c = k.clone_repo(&url, "after");
    assert!(c.join("a.txt").exists());
}
