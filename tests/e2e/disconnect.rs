//! A client that goes away mid-clone: Kura kills its git child (and pack-objects goes with it).

use crate::harness::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Processes whose command line mentions `needle` (e.g. the repository's directory).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(needle) && cmd.contains("pack") {
                found.push(format!("{}: {cmd}", name.to_string_lossy()));
            }
        }
    }
    found
}

both! {
    fn client_gone_mid_clone_kills_git(b: Backend) {
        let k = Kura::builder(b)
            .env("KURA_MAINTENANCE_DEBOUNCE", "0s")
            .env("KURA_MAINTENANCE_INTERVAL", "0s")
            .start();
        k.cli_ok(&["repo", "create", "admin/big", "--public"]);
        let url = k.url_auth("admin", ADMIN_PASSWORD, "/admin/big.git");
        let src = k.init_repo("src", &url);
        k.git_ok(&src, &["config", "core.compression", "0"]);
        cmd("sh", &["-c", "head -c 40000000 /dev/urandom > blob.bin"]).dir(&src).run().assert_ok();
        k.git_ok(&src, &["add", "blob.bin"]);
        k.git_ok(&src, &["commit", "-q", "-m", "40 MB"]);
        k.git_ok(&src, &["push", "-q", "origin", "HEAD:main"]);
        let head = k.rev(&src, "HEAD");
        let show = k.cli_ok(&["repo", "show", "admin/big"]);
        let storage = show
            .lines()
            .find_map(|l| l.strip_prefix("storage:"))
            .expect("storage line")
            .trim()
            .to_string();

        // A v2 fetch of everything, then hang up after the first bytes of the pack.
        let body = format!("0012command=fetch\n00010032want {head}\n0009done\n0000");
        let mut s = std::net::TcpStream::connect(k.addr()).expect("connect");
        write!(
            s,
            "POST /admin/big.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nGit-Protocol: version=2\r\n\
             Content-Type: application/x-git-upload-pack-request\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut first = [0u8; 512];
        let n = s.read(&mut first).expect("read the start of the response");
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&first[..n]));
        let mut running = processes_mentioning(&storage);
        let seen_by = Instant::now() + Duration::from_secs(3);
        while running.is_empty() && Instant::now() < seen_by {
            std::thread::sleep(Duration::from_millis(50));
            running = processes_mentioning(&storage);
        }
        assert!(!running.is_empty(), "git upload-pack should still be sending 40 MB when the client hangs up; got {:?}", String::from_utf8_lossy(&first[..n]));
        drop(s);

        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = processes_mentioning(&storage);
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline,
                "git still runs 15 s after the client hung up:\n{}\n(while connected: {running:?})", left.join("\n"));
            std::thread::sleep(Duration::from_millis(200));
        }
        // The server is fine afterwards.
        let c = k.clone_repo(&k.url("/admin/big.git"), "after");
        assert_eq!(k.rev(&c, "HEAD"), head);
    }
}
