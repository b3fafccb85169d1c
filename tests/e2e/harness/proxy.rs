//! A throttling TCP proxy (`SlowProxy`), to keep a push in flight for a while.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

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
