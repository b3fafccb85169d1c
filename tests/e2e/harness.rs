//! Test harness: starts the real `kura` binary on 127.0.0.1 (SQLite or a fresh PostgreSQL
//! database), runs its CLI against the same data, drives it with the real `git` client and with
//! raw HTTP/1.1 requests.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "admin-pass-123";
const KURA_BIN: &str = env!("CARGO_BIN_EXE_kura");
const READY_PREFIX: &str = "kura: listening on http://";
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for any single git or CLI command: a hung server must fail the test, not hang it.
const CMD_TIMEOUT: Duration = Duration::from_secs(240);

/// Generates one `#[test]` per backend: `NAME::sqlite` and `NAME::postgres`, so that nextest runs
/// them as separate tests (in parallel).
macro_rules! both {
    ($( $(#[$meta:meta])* fn $name:ident($b:ident : Backend) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($b: $crate::harness::Backend) $body
            #[test]
            fn sqlite() { run($crate::harness::Backend::Sqlite) }
            #[test]
            fn postgres() { run($crate::harness::Backend::Postgres) }
        }
    )*};
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: one fresh database per test

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct PgDb {
    pub name: String,
    pub url: String,
}

fn psql(sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `psql` (PostgreSQL client) for the postgres e2e tests: {e}")
        })
}

impl PgDb {
    pub fn create() -> PgDb {
        let name = format!(
            "kura_t_{}_{}_{:08x}",
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::SeqCst),
            random_u64() as u32
        );
        let out = psql(&format!("CREATE DATABASE \"{name}\""));
        if !out.status.success() {
            panic!(
                "PostgreSQL is required by the e2e suite and is not usable at 127.0.0.1:5432 \
                 (user postgres): `CREATE DATABASE {name}` failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        PgDb { name, url }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let out = psql(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ));
        if !out.status.success() {
            eprintln!(
                "warning: could not drop test database {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands (git, kura CLI) with captured output and a timeout

#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub cmdline: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    /// Panics with the command's output unless it succeeded.
    pub fn assert_ok(self) -> Out {
        assert!(
            self.status.success(),
            "command failed ({}): {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.cmdline,
            self.stdout,
            self.stderr
        );
        self
    }
    /// Panics unless the command failed.
    pub fn assert_err(self) -> Out {
        assert!(
            !self.status.success(),
            "command unexpectedly succeeded: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.stdout,
            self.stderr
        );
        self
    }
    /// Both streams, for messages.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub struct Cmd {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    cmdline: String,
    timeout: Duration,
}

impl Cmd {
    fn new(program: &str, args: &[&str]) -> Cmd {
        let mut cmd = Command::new(program);
        cmd.args(args);
        let cmdline = format!("{} {}", program, args.join(" "));
        Cmd {
            cmd,
            stdin: None,
            cmdline,
            timeout: CMD_TIMEOUT,
        }
    }
    pub fn stdin(mut self, data: impl AsRef<[u8]>) -> Cmd {
        self.stdin = Some(data.as_ref().to_vec());
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.cmd.env(k, v);
        self
    }
    pub fn env_remove(mut self, k: &str) -> Cmd {
        self.cmd.env_remove(k);
        self
    }
    pub fn dir(mut self, d: &Path) -> Cmd {
        self.cmd.current_dir(d);
        self
    }
    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }
    pub fn run(mut self) -> Out {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.cmdline));
        if let Some(data) = self.stdin.take() {
            let mut sin = child.stdin.take().expect("stdin");
            thread::spawn(move || {
                let _ = sin.write_all(&data);
            });
        }
        let mut so = child.stdout.take().expect("stdout");
        let mut se = child.stderr.take().expect("stderr");
        let to = thread::spawn(move || {
            let mut v = Vec::new();
            let _ = so.read_to_end(&mut v);
            v
        });
        let te = thread::spawn(move || {
            let mut v = Vec::new();
            let _ = se.read_to_end(&mut v);
            v
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(e) => panic!("waiting for `{}`: {e}", self.cmdline),
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = String::from_utf8_lossy(&to.join().unwrap_or_default()).into_owned();
                let stderr = String::from_utf8_lossy(&te.join().unwrap_or_default()).into_owned();
                panic!(
                    "`{}` did not finish within {:?}; killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                    self.cmdline, self.timeout
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let stdout = String::from_utf8_lossy(&to.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&te.join().unwrap_or_default()).into_owned();
        Out {
            status,
            stdout,
            stderr,
            cmdline: self.cmdline,
        }
    }
}

/// Any program with captured output and the default timeout (inherited environment less the
/// variables `scrub_env` removes).
pub fn cmd(program: &str, args: &[&str]) -> Cmd {
    let mut c = Cmd::new(program, args);
    scrub_env(&mut c.cmd);
    c
}

/// Removes inherited variables that would change how kura or git behave.
fn scrub_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("KURA_")
            || k.starts_with("AWS_")
            || k.starts_with("ECS_CONTAINER_METADATA")
            || k.starts_with("GIT_")
            || k.starts_with("PG")
            || k == "RUST_LOG"
            || k == "XDG_CONFIG_HOME"
            || k == "SSH_ASKPASS"
            || k.starts_with("http_proxy")
            || k.starts_with("HTTP_PROXY")
            || k.starts_with("https_proxy")
            || k.starts_with("HTTPS_PROXY")
            || k.starts_with("all_proxy")
            || k.starts_with("ALL_PROXY")
        {
            cmd.env_remove(&k);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server

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
            if std::env::var_os("KURA_E2E_KEEP").is_some() {
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

/// Percent-encodes everything but unreserved characters (for user info in URLs).
pub fn pct(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::new();
    for ch in data.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        o.push(T[(n >> 18) as usize & 63] as char);
        o.push(T[(n >> 12) as usize & 63] as char);
        o.push(if ch.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        o.push(if ch.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1

pub struct Req {
    addr: SocketAddr,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    pub fn new(addr: SocketAddr, method: &str, path: &str) -> Req {
        Req {
            addr,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn basic(self, user: &str, pass: &str) -> Req {
        let v = format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()));
        self.header("Authorization", &v)
    }
    pub fn bearer(self, token: &str) -> Req {
        self.header("Authorization", &format!("Bearer {token}"))
    }
    pub fn body(mut self, b: impl AsRef<[u8]>) -> Req {
        self.body = b.as_ref().to_vec();
        self
    }
    pub fn json(self, v: &serde_json::Value) -> Req {
        self.header("Content-Type", "application/json")
            .body(v.to_string())
    }
    pub fn send(self) -> Resp {
        let what = format!("{} {}", self.method, self.path);
        self.try_send().unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Like `send`, but connection errors are returned rather than panicking.
    pub fn try_send(self) -> std::io::Result<Resp> {
        let what = format!("{} {}", self.method, self.path);
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(10))?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        s.set_write_timeout(Some(Duration::from_secs(60))).ok();
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.addr
        );
        head.push_str("User-Agent: kura-e2e\r\nConnection: close\r\n");
        let has_len = self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
        if !has_len
            && (!self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        s.write_all(&bytes)?;
        let mut raw = Vec::new();
        if let Err(e) = s.read_to_end(&mut raw) {
            // a reset after a complete response is fine
            if raw.is_empty() {
                return Err(e);
            }
        }
        Resp::parse(&raw).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "malformed HTTP response to {what}: {:?}",
                    String::from_utf8_lossy(&raw)
                ),
            )
        })
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// (lower-case name, value)
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    fn parse(raw: &[u8]) -> Option<Resp> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            body = dechunk(&body)?;
        } else if let Some(len) = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            body.truncate(len);
        }
        Some(Resp {
            status,
            headers,
            body,
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response (status {}) is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
    /// For assertion messages.
    pub fn describe(&self) -> String {
        let hs: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let mut body = self.text();
        if body.len() > 2000 {
            let mut cut = 2000;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push_str("...");
        }
        format!("HTTP {}\n{}\n\n{}", self.status, hs.join("\n"), body)
    }
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&b[..nl]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        b = &b[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Misc

/// Peak resident set size (VmHWM) of a process, in kB.
pub fn rss_kb_peak(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// A git pkt-line.
pub fn pkt(s: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", s.len() + 4).into_bytes();
    v.extend_from_slice(s.as_bytes());
    v
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// Writes `mb` MiB of random (incompressible) data to `path` (`head -c ... /dev/urandom`).
pub fn random_file(path: &Path, mb: u64) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {} /dev/urandom > '{}'",
            mb * 1024 * 1024,
            path.display()
        ))
        .status()
        .expect("head");
    assert!(
        st.success(),
        "could not write random data to {}",
        path.display()
    );
}

/// A list of every file path under `dir` (relative), with sizes, for "nothing changed" checks.
pub fn tree_snapshot(dir: &Path, skip: &[&Path]) -> Vec<(PathBuf, u64)> {
    fn walk(d: &Path, skip: &[&Path], out: &mut Vec<(PathBuf, u64)>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if skip.iter().any(|s| p.starts_with(s)) {
                continue;
            }
            let Ok(md) = fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                out.push((p.clone(), 0));
                walk(&p, skip, out);
            } else {
                out.push((p, md.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, skip, &mut out);
    out.sort();
    out
}

/// Bare repositories (`*.git` directories) under `dir`.
pub fn bare_repos(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.join("HEAD").is_file() && p.join("objects").is_dir() {
                    out.push(p);
                } else {
                    walk(&p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Asserts `hay` contains `needle`, showing `hay` otherwise.
#[track_caller]
pub fn assert_contains(hay: &str, needle: &str, what: &str) {
    assert!(
        hay.contains(needle),
        "{what}: expected to contain {needle:?}, got:\n{hay}"
    );
}

// ---------------------------------------------------------------------------------------------
// A throttling TCP proxy (to keep a push in flight for a while)

pub struct SlowProxy {
    pub addr: SocketAddr,
    /// Bytes forwarded from clients to the server so far (all connections).
    pub upstream_bytes: Arc<std::sync::atomic::AtomicU64>,
}

/// Forwards 127.0.0.1:<new port> to `target`; client-to-server traffic is limited to about
/// `bytes_per_sec`. Runs until the test process ends.
pub fn slow_proxy(target: SocketAddr, bytes_per_sec: u64) -> SlowProxy {
    use std::net::{Shutdown, TcpListener};
    use std::sync::atomic::AtomicU64;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let counter = Arc::new(AtomicU64::new(0));
    let c2 = counter.clone();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            let (mut c_read, mut s_write) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let (mut s_read, mut c_write) = (server, client);
            let counter = c2.clone();
            thread::spawn(move || {
                const CHUNK: usize = 32 * 1024;
                let pause = Duration::from_secs_f64(CHUNK as f64 / bytes_per_sec as f64);
                let mut buf = vec![0u8; CHUNK];
                loop {
                    match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s_write.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            counter.fetch_add(n as u64, Ordering::SeqCst);
                            thread::sleep(pause.mul_f64(n as f64 / CHUNK as f64));
                        }
                    }
                }
                let _ = s_write.shutdown(Shutdown::Write);
            });
            thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(Shutdown::Write);
            });
        }
    });
    SlowProxy {
        addr,
        upstream_bytes: counter,
    }
}

// ---------------------------------------------------------------------------------------------
// Push mirrors: moto (CodeCommit's API) and the CodeCommit Git stand-in, from tests/.venv

/// The AWS credentials the mirror tests give Kura (and the stand-in expects).
pub const AWS_KEY_ID: &str = "AKIAKURAE2ETEST00001";
pub const AWS_SECRET: &str = "kuraE2eSecret/Key+0123456789abcdefXYZ";
/// A port nothing listens on (discard): an endpoint that must never be reached.
pub const CLOSED_ENDPOINT: &str = "http://127.0.0.1:9";

/// The repository's `tests/` folder: of the checkout being tested (cargo and nextest set
/// CARGO_MANIFEST_DIR when they run tests), not of wherever the binary was compiled, since
/// several checkouts may share one target directory.
pub fn tests_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let p = manifest.join("../../tests");
    p.canonicalize().unwrap_or(p)
}

fn venv_bin(name: &str) -> PathBuf {
    let p = tests_dir().join(".venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run tests/run to create tests/.venv (a Python venv with moto[server]); \
         the mirror tests need it",
        p.display()
    );
    p
}

/// `tests/.venv/bin/python` (panics with what to do when missing).
pub fn venv_python() -> PathBuf {
    venv_bin("python")
}

/// A TCP port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether something accepts TCP connections on 127.0.0.1:port.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// Polls `f` every 100 ms until it is true; panics with `what` (and the last `f` result
/// described by `detail`) after `timeout`.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn tail_of(path: &Path, max: usize) -> String {
    let s = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

fn append_file(path: &Path) -> fs::File {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn kill_child(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// `moto_server` on 127.0.0.1 (CodeCommit's API for `--create`), killed on drop.
pub struct Moto {
    pub port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }
    /// With extra environment, e.g. `INITIAL_NO_AUTH_ACTION_COUNT=0` (moto checks IAM then).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let bin = venv_bin("moto_server");
        let dir = tempfile::Builder::new()
            .prefix("kura-moto-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("moto.log");
        for _attempt in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            scrub_env(&mut cmd);
            cmd.env("HOME", dir.path())
                .envs(env.iter().copied())
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::from(append_file(&log)))
                .stderr(Stdio::from(append_file(&log)));
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let start = Instant::now();
            loop {
                if let Ok(Some(st)) = child.try_wait() {
                    eprintln!(
                        "moto_server exited ({st}) at start (port {port} taken?):\n{}",
                        tail_of(&log, 4000)
                    );
                    break;
                }
                if port_open(port)
                    && Req::new(
                        SocketAddr::from(([127, 0, 0, 1], port)),
                        "GET",
                        "/moto-api/",
                    )
                    .try_send()
                    .is_ok()
                {
                    return Moto {
                        port,
                        child,
                        log,
                        _dir: dir,
                    };
                }
                if start.elapsed() > Duration::from_secs(60) {
                    kill_child(&mut child);
                    panic!(
                        "moto_server did not answer on 127.0.0.1:{port} within 60 s:\n{}",
                        tail_of(&log, 4000)
                    );
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("moto_server could not start:\n{}", tail_of(&log, 4000));
    }
    /// `http://127.0.0.1:PORT` (for `AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// Runs a CodeCommit call against moto with boto3 from the venv, as the test's AWS
    /// identity; returns the process output.
    fn boto(&self, code: &str) -> Out {
        let script = format!(
            "import boto3, sys\n\
             c = boto3.client('codecommit', region_name='us-east-1', endpoint_url='{}', \
             aws_access_key_id='{}', aws_secret_access_key='{}')\n{}",
            self.endpoint(),
            AWS_KEY_ID,
            AWS_SECRET,
            code
        );
        cmd(
            venv_python().to_str().expect("utf-8 path"),
            &["-c", &script],
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .timeout(Duration::from_secs(60))
        .run()
    }
    /// Whether moto has the CodeCommit repository `name` (GetRepository).
    pub fn repository_exists(&self, name: &str) -> bool {
        let out = self.boto(&format!(
            "try:\n    c.get_repository(repositoryName='{name}')\n    print('exists')\n\
             except c.exceptions.RepositoryDoesNotExistException:\n    print('missing')\n"
        ));
        let out = out.assert_ok();
        match out.stdout.trim() {
            "exists" => true,
            "missing" => false,
            other => panic!("unexpected answer from moto: {other}"),
        }
    }
    /// Creates a CodeCommit repository in moto (CreateRepository).
    pub fn create_repository(&self, name: &str) {
        self.boto(&format!("c.create_repository(repositoryName='{name}')\n"))
            .assert_ok();
    }
    pub fn logs(&self) -> String {
        tail_of(&self.log, 20000)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "=== moto (port {}) log tail ===\n{}",
                self.port,
                tail_of(&self.log, 6000)
            );
        }
    }
}

/// `tests/codecommit_standin.py`: a CodeCommit Git endpoint (SigV4 passwords checked with
/// botocore) or, with `--basic`, a plain user/password Git remote; `git http-backend` over
/// repositories in `root/<name>.git`. Killed on drop.
pub struct Standin {
    /// Its repositories, `overlaps.log`, `pushes.log` and the `slow` switch.
    pub root: PathBuf,
    pub port: u16,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Standin {
    /// A CodeCommit endpoint expecting `key`/`secret` (and `token` as session token).
    pub fn codecommit(key: &str, secret: &str, token: Option<&str>) -> Standin {
        let mut args = vec![
            "--access-key".to_string(),
            key.to_string(),
            "--secret-key".to_string(),
            secret.to_string(),
            "--region".to_string(),
            "us-east-1".to_string(),
        ];
        if let Some(t) = token {
            args.push("--session-token".into());
            args.push(t.into());
        }
        Standin::start(args)
    }
    /// A CodeCommit endpoint for the test's credentials ([`AWS_KEY_ID`], [`AWS_SECRET`]).
    pub fn for_test_identity() -> Standin {
        Standin::codecommit(AWS_KEY_ID, AWS_SECRET, None)
    }
    /// A generic remote (`/<name>.git`) with Basic auth `user:pass` (given in the environment,
    /// not on the command line).
    pub fn basic(user_pass: &str) -> Standin {
        Standin::start_with_env(Vec::new(), vec![("STANDIN_BASIC".into(), user_pass.into())])
    }

    fn start(args: Vec<String>) -> Standin {
        Standin::start_with_env(args, Vec::new())
    }

    fn start_with_env(args: Vec<String>, env: Vec<(String, String)>) -> Standin {
        let dir = tempfile::Builder::new()
            .prefix("kura-standin-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("remote");
        fs::create_dir_all(&root).expect("stand-in root");
        let mut s = Standin {
            root,
            port: 0,
            args,
            env,
            log: dir.path().join("standin.log"),
            child: None,
            _dir: dir,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the stand-in is already running");
        let python = venv_python();
        let script = tests_dir().join("codecommit_standin.py");
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .arg("--root")
            .arg(&self.root)
            .args(["--port", &self.port.to_string()])
            .args(&self.args);
        scrub_env(&mut cmd);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("stand-in log");
        cmd.env("HOME", &self.root)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} {}: {e}",
                python.display(),
                script.display()
            )
        });
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<Option<u16>>();
        thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let port = lines.next().and_then(|l| l.ok()).and_then(|l| {
                l.trim()
                    .strip_prefix("listening on ")
                    .and_then(|p| p.parse().ok())
            });
            let _ = tx.send(port);
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(p)) => {
                assert!(
                    self.port == 0 || self.port == p,
                    "stand-in moved to port {p}"
                );
                self.port = p;
                self.child = Some(child);
            }
            other => {
                kill_child(&mut child);
                panic!(
                    "the CodeCommit stand-in did not print `listening on PORT` ({other:?}):\n{}",
                    tail_of(&self.log, 4000)
                );
            }
        }
    }
    /// SIGKILL (the endpoint is down until `restart`).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_child(&mut c);
        }
    }
    /// Starts it again on the same port (retries for a while if the port is still taken).
    pub fn restart(&mut self) {
        let start = Instant::now();
        loop {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn()));
            match r {
                Ok(()) => return,
                Err(e) if start.elapsed() > Duration::from_secs(20) => std::panic::resume_unwind(e),
                Err(_) => thread::sleep(Duration::from_millis(300)),
            }
        }
    }
    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// The bare repository behind remote `name`.
    pub fn bare(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.git"))
    }
    /// Makes every push sleep 3 s first (or not).
    pub fn set_slow(&self, on: bool) {
        let p = self.root.join("slow");
        if on {
            fs::write(&p, "").expect("touch slow");
        } else {
            let _ = fs::remove_file(&p);
        }
    }
    /// `overlaps.log` (empty when absent): one line per push that started while another push
    /// to the same repository was running.
    pub fn overlaps(&self) -> String {
        fs::read_to_string(self.root.join("overlaps.log")).unwrap_or_default()
    }
    /// `pushes.log` (empty when absent): one `NAME TIME start` line per receive-pack.
    pub fn pushes_log(&self) -> String {
        fs::read_to_string(self.root.join("pushes.log")).unwrap_or_default()
    }
    /// How many pushes to `name` have started.
    pub fn push_count(&self, name: &str) -> usize {
        self.pushes_log()
            .lines()
            .filter(|l| l.split(' ').next() == Some(name) && l.ends_with(" start"))
            .count()
    }
    /// Its stderr (requests, refusals).
    pub fn logs(&self) -> String {
        tail_of(&self.log, 200_000)
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "=== stand-in (port {}) log tail ===\n{}",
                self.port,
                tail_of(&self.log, 6000)
            );
        }
    }
}

/// The `remote: mirrored to URL (SUMMARY) in X s` line of a push's stderr for `url`:
/// (summary, seconds).
pub fn mirrored_line(stderr: &str, url: &str) -> Option<(String, f64)> {
    let prefix = format!("mirrored to {url} (");
    stderr.lines().find_map(|l| {
        let l = l.trim().strip_prefix("remote:")?.trim();
        let rest = l.strip_prefix(&prefix)?;
        let (summary, tail) = rest.rsplit_once(") in ")?;
        let secs = tail.trim().strip_suffix(" s")?.trim().parse().ok()?;
        Some((summary.to_string(), secs))
    })
}

/// The value after `key` (e.g. `last error:`) in `kura mirror status` output.
pub fn status_field(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
}
