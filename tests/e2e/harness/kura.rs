//! The server under test: `KuraBuilder`/`Kura` lifecycle, its CLI and git bound to it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::aws::{AWS_KEY_ID, AWS_SECRET, CLOSED_ENDPOINT};
use super::http::{pct, Req, Resp};
use super::pg::{Backend, PgDb};
use super::process::{scrub_env, Cmd, Out, CMD_TIMEOUT};

pub const ADMIN_PASSWORD: &str = "admin-pass-123";
const KURA_BIN: &str = env!("CARGO_BIN_EXE_kura");
const READY_PREFIX: &str = "kura: listening on http://";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct KuraBuilder {
    backend: Backend,
    env: Vec<(String, String)>,
}

impl KuraBuilder {
    pub fn env(mut self, k: &str, v: &str) -> KuraBuilder {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    /// The environment of the CodeCommit mirror tests (for `kura serve` and the CLI alike):
    /// the test AWS credentials ([`AWS_KEY_ID`], [`AWS_SECRET`]), region us-east-1, CodeCommit's
    /// API at `api` (moto; `None`: a closed port, so that nothing ever reaches real AWS), its Git
    /// endpoint at `git` (the stand-in), no retries in the SDK, no instance metadata, and mirror
    /// retries capped at 2 s.
    pub fn codecommit(self, git: &str, api: Option<&str>) -> KuraBuilder {
        self.env("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", api.unwrap_or(CLOSED_ENDPOINT))
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KURA_CODECOMMIT_GIT_ENDPOINT", git)
            .env("KURA_MIRROR_RETRY_MAX", "2s")
    }
    /// Temp dir, database and environment, without starting the server.
    pub fn prepare(self) -> Kura {
        let tmp = tempfile::Builder::new()
            .prefix("kura-e2e-")
            .tempdir()
            .expect("temp dir");
        let root = tmp.path().to_path_buf();
        let data_dir = root.join("data");
        let home = root.join("home");
        let work = root.join("work");
        fs::create_dir_all(&home).expect("home");
        fs::create_dir_all(&work).expect("work");
        fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Kura Test\n\temail = test@kura.invalid\n\
             [init]\n\tdefaultBranch = main\n\
             [credential]\n\thelper =\n\
             [advice]\n\tdetachedHead = false\n\tpushUpdateRejected = false\n\
             [pull]\n\trebase = false\n\
             [gc]\n\tauto = 0\n\
             [maintenance]\n\tauto = false\n\
             [core]\n\tautocrlf = false\n\
             [protocol]\n\tversion = 2\n",
        )
        .expect("gitconfig");
        let pg = match self.backend {
            Backend::Postgres => Some(PgDb::create()),
            Backend::Sqlite => None,
        };
        let mut env = vec![
            ("KURA_DATA_DIR".to_string(), data_dir.display().to_string()),
            ("KURA_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            (
                "KURA_ADMIN_PASSWORD".to_string(),
                ADMIN_PASSWORD.to_string(),
            ),
            ("KURA_LOG_FORMAT".to_string(), "json".to_string()),
            // Tests stop servers often; the blackout has tests of its own.
            ("KURA_SHUTDOWN_BLACKOUT".to_string(), "0s".to_string()),
            // The folder is local disk, which caches nothing stale; the replica tests set it.
            ("KURA_SHARED_CACHE_WINDOW".to_string(), "0s".to_string()),
            // Every server its own pack cache (the default folder is one per machine).
            (
                "KURA_PACK_CACHE_DIR".to_string(),
                tmp.path().join("pack-cache").display().to_string(),
            ),
        ];
        if let Some(pg) = &pg {
            env.push(("KURA_DATABASE_URL".to_string(), pg.url.clone()));
        }
        for (k, v) in self.env {
            env.retain(|(ek, _)| *ek != k);
            env.push((k, v));
        }
        Kura {
            backend: self.backend,
            root,
            data_dir,
            home,
            work,
            log_path: tmp.path().join("kura.log"),
            env,
            child: None,
            addr: None,
            stdout: Arc::new(Mutex::new(String::new())),
            _pg: pg,
            tmp: Some(tmp),
        }
    }
    pub fn start(self) -> Kura {
        let mut k = self.prepare();
        k.spawn();
        k
    }
    /// A data folder (and database) as a first `kura serve` leaves it, the server stopped:
    /// for the CLI on its own (only `serve` creates a data folder).
    pub fn initialized(self) -> Kura {
        let mut k = self.start();
        let st = k.stop_sigterm();
        assert!(
            st.success(),
            "kura serve did not stop cleanly: {st}\n{}",
            k.logs()
        );
        k
    }
}

pub struct Kura {
    pub backend: Backend,
    /// The test's temp dir (removed at the end).
    pub root: PathBuf,
    pub data_dir: PathBuf,
    /// HOME of the git client (with its .gitconfig).
    pub home: PathBuf,
    /// Where tests put their clones.
    pub work: PathBuf,
    pub log_path: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    addr: Option<SocketAddr>,
    stdout: Arc<Mutex<String>>,
    // Field order matters for drop: the server is killed in Drop::drop, then the database is
    // dropped, then the temp dir removed.
    _pg: Option<PgDb>,
    tmp: Option<tempfile::TempDir>,
}

impl Kura {
    pub fn builder(backend: Backend) -> KuraBuilder {
        KuraBuilder {
            backend,
            env: Vec::new(),
        }
    }
    /// A started server with the default environment.
    pub fn start(backend: Backend) -> Kura {
        Kura::builder(backend).start()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(KURA_BIN);
        cmd.args(args);
        scrub_env(&mut cmd);
        cmd.env("HOME", &self.home);
        cmd.env("RUST_BACKTRACE", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.current_dir(&self.root);
        cmd
    }

    /// Sets (or replaces) a variable of the environment of later `spawn`s and CLI runs.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(ek, _)| ek != k);
        self.env.push((k.to_string(), v.to_string()));
    }
    /// A variable of the environment given to the server and the CLI.
    pub fn env_value(&self, k: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(ek, _)| ek == k)
            .map(|(_, v)| v.as_str())
    }
    /// The PostgreSQL database name (None on SQLite).
    pub fn pg_name(&self) -> Option<&str> {
        self._pg.as_ref().map(|p| p.name.as_str())
    }
    /// A second `kura serve` on the same data folder and database (own port and log file
    /// `kura-N.log` in the same temp dir), with `extra` added to the environment; started.
    /// Drop it before `self` (declare it later).
    pub fn sibling(&self, extra: &[(&str, &str)]) -> Kura {
        static SIBLINGS: AtomicU32 = AtomicU32::new(1);
        let n = SIBLINGS.fetch_add(1, Ordering::SeqCst);
        let mut env = self.env.clone();
        let cache = self.root.join(format!("pack-cache-{n}"));
        env.retain(|(ek, _)| ek != "KURA_PACK_CACHE_DIR");
        env.push(("KURA_PACK_CACHE_DIR".into(), cache.display().to_string()));
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        let mut k = Kura {
            backend: self.backend,
            root: self.root.clone(),
            data_dir: self.data_dir.clone(),
            home: self.home.clone(),
            work: self.work.clone(),
            log_path: self.root.join(format!("kura-{n}.log")),
            env,
            child: None,
            addr: None,
            stdout: Arc::new(Mutex::new(String::new())),
            _pg: None,
            tmp: None,
        };
        k.spawn();
        k
    }
    /// SIGKILL (no shutdown at all) and reap; `spawn` starts it again.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("kura is not running");
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Starts `kura serve` (again, after a stop: same data, new port).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "kura is already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let mut cmd = self.command(&["serve"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {KURA_BIN}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<Option<String>>();
        let buf = self.stdout.clone();
        thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut b) = buf.lock() {
                    b.push_str(&line);
                    b.push('\n');
                }
                if !sent {
                    if let Some(rest) = line.trim().strip_prefix(READY_PREFIX) {
                        let _ = tx.send(Some(rest.trim_end_matches('/').to_string()));
                        sent = true;
                    }
                }
            }
            if !sent {
                let _ = tx.send(None);
            }
        });
        let pid = child.id();
        self.child = Some(child);
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(a)) => a,
            Ok(None) => {
                thread::sleep(Duration::from_millis(200));
                let st = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "kura serve (pid {pid}) closed stdout without printing `{READY_PREFIX}...` \
                     (exit status: {st:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.stdout_text(),
                    self.logs()
                );
            }
            Err(_) => panic!(
                "kura serve (pid {pid}) did not print `{READY_PREFIX}...` within {START_TIMEOUT:?}\n\
                 --- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout_text(),
                self.logs()
            ),
        };
        let addr: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("cannot parse the address in the ready line `{addr}`: {e}"));
        self.addr = Some(addr);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("kura was never started")
    }
    pub fn port(&self) -> u16 {
        self.addr().port()
    }
    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://{}", self.addr())
    }
    /// `http://127.0.0.1:PORT/PATH` without credentials.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base(), path.trim_start_matches('/'))
    }
    /// `http://USER:SECRET@127.0.0.1:PORT/PATH`
    pub fn url_auth(&self, user: &str, secret: &str, path: &str) -> String {
        format!(
            "http://{}:{}@{}/{}",
            pct(user),
            pct(secret),
            self.addr(),
            path.trim_start_matches('/')
        )
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("kura is not running").id()
    }
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Everything kura wrote to stderr (its logs) so far, over all its runs.
    pub fn logs(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        let pid = self.pid();
        let st = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM {pid} failed");
    }
    /// Waits for the server to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("kura is not running");
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                self.child = None;
                return st;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "kura did not exit within {timeout:?} after SIGTERM; killed\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    /// SIGTERM, then wait for the exit (60 s at most).
    pub fn stop_sigterm(&mut self) -> ExitStatus {
        self.sigterm();
        self.wait_exit(Duration::from_secs(60))
    }

    // --- CLI ----------------------------------------------------------------------------------

    /// `kura ARGS` with the server's environment (same data dir and database).
    pub fn cli(&self, args: &[&str]) -> Cmd {
        let cmd = self.command(args);
        Cmd {
            cmd,
            stdin: None,
            cmdline: format!("kura {}", args.join(" ")),
            timeout: CMD_TIMEOUT,
        }
    }
    /// Runs the CLI, panics with its stderr on failure, returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        self.cli(args).run().assert_ok().stdout
    }
    /// Runs the CLI with `input` on stdin; panics on failure; returns stdout.
    pub fn cli_ok_stdin(&self, args: &[&str], input: &str) -> String {
        self.cli(args).stdin(input).run().assert_ok().stdout
    }
    /// Runs the CLI, asserts a non-zero exit and an `error: ` message; returns stderr.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli(args).run().assert_err();
        assert!(
            out.stderr.starts_with("error: "),
            "`{}` failed but its stderr does not start with `error: `:\n{}",
            out.cmdline,
            out.stderr
        );
        out.stderr
    }

    /// Like `cli_err`, with `input` on stdin.
    pub fn cli_err_stdin(&self, args: &[&str], input: &str) -> String {
        let out = self.cli(args).stdin(input).run().assert_err();
        assert!(
            out.stderr.starts_with("error: "),
            "`{}` failed but its stderr does not start with `error: `:\n{}",
            out.cmdline,
            out.stderr
        );
        out.stderr
    }

    /// Creates a user with a password.
    pub fn add_user(&self, name: &str, password: &str) {
        self.cli_ok_stdin(
            &["user", "add", name, "--password-stdin"],
            &format!("{password}\n"),
        );
    }
    /// Creates a token and returns it (checks the documented output: one line `kura_...`).
    pub fn token(&self, user: &str, scope: &str) -> String {
        let out = self.cli_ok(&["token", "create", user, "--scope", scope]);
        parse_token(&out)
    }
    /// A user with a password (`<name>-pw-123`) and a write token; returns the token.
    pub fn user_with_token(&self, name: &str) -> String {
        self.add_user(name, &format!("{name}-pw-123"));
        self.token(name, "write")
    }

    /// The usual start: alice with a write token, her repository `alice/app`, and an empty
    /// local repository `work/w` whose origin is it. Returns (token, origin URL, directory).
    pub fn alice_app(&self) -> (String, String, PathBuf) {
        let tok = self.user_with_token("alice");
        self.cli_ok(&["repo", "create", "alice/app"]);
        let url = self.url_auth("alice", &tok, "alice/app.git");
        let dir = self.init_repo("w", &url);
        (tok, url, dir)
    }

    // --- git ----------------------------------------------------------------------------------

    /// `git ARGS` in `dir` with a clean environment (own HOME and .gitconfig, no system config,
    /// no prompts, no credential helper).
    pub fn git_cmd(&self, dir: &Path, args: &[&str]) -> Cmd {
        let mut c = Cmd::new("git", args);
        scrub_env(&mut c.cmd);
        c.cmd
            .current_dir(dir)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS");
        c.cmdline = format!("(in {}) {}", dir.display(), c.cmdline);
        c
    }
    pub fn git(&self, dir: &Path, args: &[&str]) -> Out {
        self.git_cmd(dir, args).run()
    }
    /// Runs git; panics with its stderr on failure; returns stdout.
    pub fn git_ok(&self, dir: &Path, args: &[&str]) -> String {
        self.git(dir, args).assert_ok().stdout
    }
    /// Runs git, asserts failure, returns stderr.
    pub fn git_err(&self, dir: &Path, args: &[&str]) -> String {
        self.git(dir, args).assert_err().stderr
    }
    /// `git rev-parse REV` in dir.
    pub fn rev(&self, dir: &Path, rev: &str) -> String {
        self.git_ok(dir, &["rev-parse", rev]).trim().to_string()
    }
    /// Clones `url` into `work/<name>`, returns the path.
    pub fn clone_repo(&self, url: &str, name: &str) -> PathBuf {
        self.git_ok(&self.work, &["clone", "-q", url, name]);
        self.work.join(name)
    }
    /// `git init` in `work/<name>` with `origin` set to `url`; returns the path.
    pub fn init_repo(&self, name: &str, url: &str) -> PathBuf {
        let dir = self.work.join(name);
        fs::create_dir_all(&dir).expect("mkdir");
        self.git_ok(&dir, &["init", "-q", "-b", "main"]);
        self.git_ok(&dir, &["remote", "add", "origin", url]);
        dir
    }
    /// Makes a commit (touching `file`) in dir; returns its id.
    pub fn commit(&self, dir: &Path, file: &str, content: &str, msg: &str) -> String {
        let p = dir.join(file);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&p, content).expect("write file");
        self.git_ok(dir, &["add", "--", file]);
        self.git_ok(dir, &["commit", "-q", "-m", msg]);
        self.rev(dir, "HEAD")
    }
    /// Branches and tags (`refs/heads/*`, `refs/tags/*`, unpeeled) of a remote URL or a local
    /// repository path, by `git ls-remote --refs`; empty for a path that does not exist.
    pub fn heads_and_tags(&self, url_or_path: &str) -> std::collections::BTreeMap<String, String> {
        if !url_or_path.contains("://") && !Path::new(url_or_path).exists() {
            return Default::default();
        }
        let out = self.git_ok(
            &self.work,
            &["ls-remote", "--refs", "--heads", "--tags", url_or_path],
        );
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(id, r)| (r.trim().to_string(), id.trim().to_string()))
            .collect()
    }
    /// The value of REF on the server according to `git ls-remote` (None if absent). `refname`
    /// is matched exactly (`refs/tags/v1^{}` for a peeled tag).
    pub fn remote_ref(&self, url: &str, refname: &str) -> Option<String> {
        let out = self.git_ok(&self.work, &["ls-remote", url]);
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .find(|(_, r)| *r == refname)
            .map(|(id, _)| id.to_string())
    }

    // --- HTTP ---------------------------------------------------------------------------------

    /// A raw HTTP/1.1 request; `path` is sent exactly as given (no normalisation).
    pub fn req(&self, method: &str, path: &str) -> Req {
        Req::new(self.addr(), method, path)
    }
    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path).send()
    }
}

impl Drop for Kura {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            let logs = self.logs();
            let tail: String = {
                let n = logs.len();
                let mut start = n.saturating_sub(12000);
                while !logs.is_char_boundary(start) {
                    start += 1;
                }
                logs[start..].to_string()
            };
            eprintln!(
                "=== kura ({}) stdout ===\n{}\n=== kura stderr (last 12 kB of {}) ===\n{}",
                self.backend_name(),
                self.stdout_text(),
                self.log_path.display(),
                tail
            );
            if std::env::var_os("KURA_TEST_KEEP").is_some() {
                if let Some(t) = self.tmp.take() {
                    eprintln!("keeping {}", t.keep().display());
                }
            }
        }
    }
}

pub fn parse_token(out: &str) -> String {
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "token create must print only the token, got: {out:?}"
    );
    let t = lines[0].trim().to_string();
    assert!(t.starts_with("kura_"), "token must start with kura_: {t:?}");
    t
}
