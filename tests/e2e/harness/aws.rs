//! Push-mirror fixtures from tests/.venv: moto (CodeCommit API), the Git stand-in, output parsers.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::http::Req;
use super::process::{
    append_file, cmd, free_port, kill_child, port_open, scrub_env, spawn_listening, tail_of,
    tests_dir, Out,
};

/// The AWS credentials the mirror tests give Kura (and the stand-in expects).
pub const AWS_KEY_ID: &str = "AKIAKURAE2ETEST00001";
pub const AWS_SECRET: &str = "kuraE2eSecret/Key+0123456789abcdefXYZ";
/// A port nothing listens on (discard): an endpoint that must never be reached.
pub const CLOSED_ENDPOINT: &str = "http://127.0.0.1:9";

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
            .stderr(Stdio::from(log));
        let (mut child, announced) = spawn_listening(&mut cmd, &self.log);
        match announced {
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
