//! Child processes: `Cmd`/`Out` with captured output and a timeout, waits, ports, `tests/`.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for any single git or CLI command: a hung server must fail the test, not hang it.
pub(super) const CMD_TIMEOUT: Duration = Duration::from_secs(240);

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
    pub(super) cmd: Command,
    pub(super) stdin: Option<Vec<u8>>,
    pub(super) cmdline: String,
    pub(super) timeout: Duration,
}

impl Cmd {
    pub(super) fn new(program: &str, args: &[&str]) -> Cmd {
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
pub(super) fn scrub_env(cmd: &mut Command) {
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

pub(super) fn tail_of(path: &Path, max: usize) -> String {
    let s = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

pub(super) fn append_file(path: &Path) -> fs::File {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

pub(super) fn kill_child(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// What a helper server printed first: `Ok(Some(port))` for `listening on PORT`.
pub type Announced = Result<Option<u16>, std::sync::mpsc::RecvTimeoutError>;

/// Spawns a helper server (its stdout piped here) and waits up to 60 s for its first line,
/// `listening on PORT`; whatever it prints after goes to `log`. The caller decides what an
/// other answer means (another port, or a panic with the log).
pub fn spawn_listening(cmd: &mut Command, log: &Path) -> (Child, Announced) {
    use std::io::BufRead;
    cmd.stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Option<u16>>();
    let log = log.to_path_buf();
    thread::spawn(move || {
        let mut lines = std::io::BufReader::new(out).lines();
        let port = lines.next().and_then(|l| l.ok()).and_then(|l| {
            l.trim()
                .strip_prefix("listening on ")
                .and_then(|p| p.parse().ok())
        });
        let _ = tx.send(port);
        let mut f = append_file(&log);
        for l in lines.map_while(Result::ok) {
            let _ = writeln!(f, "{l}");
        }
    });
    let announced = rx.recv_timeout(Duration::from_secs(60));
    (child, announced)
}
