//! Push-trigger webhook fixtures: a throwaway certificate authority (`TestCa`, made with the
//! `openssl` CLI) and `tests/webhook_receiver.py` (`Receiver`), which records what Kura POSTs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::aws::venv_python;
use super::process::{
    append_file, cmd, free_port, kill_child, scrub_env, spawn_listening, tail_of, tests_dir,
};

const OPENSSL: &str = "/usr/bin/openssl";

/// The CA's extensions: rustls (webpki) wants CA:TRUE and keyCertSign on an issuer.
const CA_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = @CN@
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

/// The server certificate's request and extensions: webpki matches the name only against the
/// subjectAltName (never the CN), so both the IP and `localhost` are in it.
const LEAF_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = 127.0.0.1
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
";

/// A self-signed CA and a server certificate it signed for `127.0.0.1` and `localhost` (EC
/// P-256, 30 days), in their own temporary folder. Every `TestCa::new()` is a different CA, so
/// a second one stands for "a certificate from an authority the client does not know".
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        assert!(
            Path::new(OPENSSL).exists(),
            "{OPENSSL} is missing: install openssl (the TLS webhook tests make their \
             certificates with it)"
        );
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::Builder::new()
            .prefix("kura-ca-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        // A distinct subject per CA, so that two CAs are told apart by name as well as by key.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|t| t.as_nanos())
            .unwrap_or(0);
        let cn = format!(
            "Kura E2E Test CA {}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        fs::write(d.join("ca.cnf"), CA_CNF.replace("@CN@", &cn)).expect("write ca.cnf");
        fs::write(d.join("leaf.cnf"), LEAF_CNF).expect("write leaf.cnf");
        // (No argument has a space in it, so each step is one string.)
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let steps = [
            format!("req -x509 -config ca.cnf {ec} -keyout ca.key -out ca.pem -days 30 -sha256"),
            format!("req -new -config leaf.cnf {ec} -keyout server.key -out server.csr -sha256"),
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAserial ca.srl -CAcreateserial \
             -out server.pem -days 30 -sha256 -extfile leaf.cnf -extensions leaf"
                .to_string(),
            "verify -CAfile ca.pem -purpose sslserver server.pem".to_string(),
        ];
        for step in &steps {
            let args: Vec<&str> = step.split_whitespace().collect();
            cmd(OPENSSL, &args)
                .dir(d)
                .timeout(Duration::from_secs(60))
                .run()
                .assert_ok();
        }
        TestCa { dir }
    }
    /// The CA certificate (what a client must trust).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    /// The server certificate (for 127.0.0.1 and localhost), signed by the CA.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    /// The server certificate's private key (PEM, PKCS#8).
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

/// `tests/webhook_receiver.py` on 127.0.0.1: records every delivery (see that file for the
/// record's fields) and can be told to fail or hang. Killed on drop.
pub struct Receiver {
    pub port: u16,
    tls: bool,
    child: Child,
    log: PathBuf,
    /// A copy of the CA certificate (HTTPS only), so the receiver outlives the `TestCa`.
    ca_pem: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Receiver {
    /// Plain HTTP; with `secret`, deliveries with a wrong `X-Kura-Signature-256` get 401.
    pub fn start(secret: Option<&str>) -> Receiver {
        Receiver::spawn(secret, None)
    }
    /// HTTPS with `ca`'s server certificate.
    pub fn start_tls(secret: Option<&str>, ca: &TestCa) -> Receiver {
        Receiver::spawn(secret, Some(ca))
    }

    fn spawn(secret: Option<&str>, ca: Option<&TestCa>) -> Receiver {
        let python = venv_python();
        let script = tests_dir().join("webhook_receiver.py");
        let dir = tempfile::Builder::new()
            .prefix("kura-webhook-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("receiver.log");
        let ca_pem = ca.map(|ca| {
            let p = dir.path().join("ca.pem");
            fs::copy(ca.ca_pem(), &p).expect("copy ca.pem");
            p
        });
        for _attempt in 0..3 {
            let port = free_port();
            let mut c = Command::new(&python);
            c.arg(&script).args(["--port", &port.to_string()]);
            if let Some(ca) = ca {
                c.arg("--cert").arg(ca.cert()).arg("--key").arg(ca.key());
            }
            scrub_env(&mut c);
            if let Some(s) = secret {
                // In the environment, not the command line, where tests look for leaked secrets.
                c.env("WEBHOOK_RECEIVER_SECRET", s);
            }
            c.env("PYTHONUNBUFFERED", "1")
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stderr(Stdio::from(append_file(&log)));
            let (mut child, announced) = spawn_listening(&mut c, &log);
            match announced {
                Ok(Some(p)) if p == port => {
                    return Receiver {
                        port,
                        tls: ca.is_some(),
                        child,
                        log,
                        ca_pem,
                        dir,
                    };
                }
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                    if wait_exit(&mut child, Duration::from_secs(5)) =>
                {
                    // Most likely someone took the port between free_port and bind: try another.
                    eprintln!(
                        "webhook receiver exited at start (port {port} taken?):\n{}",
                        tail_of(&log, 4000)
                    );
                }
                other => {
                    kill_child(&mut child);
                    panic!(
                        "the webhook receiver did not print `listening on {port}` within 60 s \
                         ({other:?}):\n{}",
                        tail_of(&log, 4000)
                    );
                }
            }
        }
        panic!(
            "the webhook receiver could not start:\n{}",
            tail_of(&log, 4000)
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    /// `http://127.0.0.1:PORT/path` (or `https://`); `path` with or without its leading `/`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!(
            "{scheme}://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }
    /// Every delivery so far, in arrival order (a hanging one has `status` null until answered).
    pub fn received(&self) -> Vec<serde_json::Value> {
        let body = self.control("GET", "/_received", None);
        match serde_json::from_str(&body) {
            Ok(serde_json::Value::Array(v)) => v,
            _ => panic!("the webhook receiver's /_received is not a JSON array: {body}"),
        }
    }
    /// Polls until at least `n` deliveries arrived; panics with what did after `timeout`.
    #[track_caller]
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if start.elapsed() > timeout {
                panic!(
                    "expected at least {n} webhook deliveries within {timeout:?}, got {}:\n{}",
                    got.len(),
                    serde_json::to_string_pretty(&got).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
    /// The next `count` deliveries are answered `status` (e.g. 503).
    pub fn fail_next(&self, count: usize, status: u16) {
        let body = serde_json::json!({ "count": count, "status": status });
        self.control("POST", "/_fail", Some(&body));
    }
    /// The next `count` deliveries sleep `seconds` before they are answered.
    pub fn hang_next(&self, count: usize, seconds: f64) {
        let body = serde_json::json!({ "count": count, "seconds": seconds });
        self.control("POST", "/_hang", Some(&body));
    }
    /// Forgets the deliveries and disarms `fail_next`/`hang_next`.
    pub fn reset(&self) {
        self.control("POST", "/_reset", Some(&serde_json::json!({})));
    }
    /// Its stderr and any further stdout.
    pub fn logs(&self) -> String {
        tail_of(&self.log, 20000)
    }

    /// A control call with curl (over HTTPS too, trusting the CA); returns the body, panics
    /// unless it answered 200.
    fn control(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> String {
        let url = self.url(path);
        let data = body.map(|b| b.to_string());
        let mut args = vec![
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "30",
            "-X",
            method,
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ];
        let ca = self
            .ca_pem
            .as_ref()
            .map(|p| p.to_str().expect("utf-8 path"));
        if let Some(ca) = ca {
            args.extend(["--cacert", ca]);
        }
        if let Some(d) = &data {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", d]);
        }
        args.push(&url);
        let out = cmd("curl", &args)
            .dir(self.dir.path())
            .timeout(Duration::from_secs(60))
            .run();
        assert!(
            out.ok(),
            "curl (is it installed?) could not reach the webhook receiver: {method} {url}\n{}\n\
             --- receiver log ---\n{}",
            out.all(),
            self.logs()
        );
        let (text, code) = out.stdout.rsplit_once('\n').unwrap_or(("", &out.stdout));
        assert_eq!(
            code.trim(),
            "200",
            "the webhook receiver refused {method} {url}: {text}"
        );
        text.to_string()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        if thread::panicking() {
            eprintln!(
                "=== webhook receiver (port {}) log tail ===\n{}",
                self.port,
                tail_of(&self.log, 6000)
            );
        }
    }
}

/// Whether `child` exits within `timeout` (it is left running otherwise).
fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}
