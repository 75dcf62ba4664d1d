//! Shared helpers for integration tests that run the real `tidemark` binary on a loopback
//! port: start (with a temp data dir), wait until it accepts, raw RESP exchanges, kill -9.
//!
//! What can fail here: the binary not starting within `START_TIMEOUT` (the test fails
//! with the server's stderr), a port collision (we retry with a new port).
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start accepting connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running tidemark process; killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub args: Vec<String>,
}

/// A free loopback port (best effort: bind :0, read, release).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0");
    listener.local_addr().expect("local addr").port()
}

impl Server {
    /// Starts the binary with `--port <free> --dir <dir>` plus `extra` flags and waits until
    /// it accepts connections.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        Server::start_on(dir, port, extra)
    }

    /// Starts on a given port (used to restart after a crash).
    pub fn start_on(dir: &Path, port: u16, extra: &[&str]) -> Server {
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("tidemark-test-{port}.log")))
                .expect("create log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn tidemark");
        let mut server = Server {
            child,
            port,
            dir: dir.to_path_buf(),
            args,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(
                    std::env::temp_dir().join(format!("tidemark-test-{}.log", self.port)),
                )
                .unwrap_or_default();
                panic!(
                    "tidemark exited early with {status} (args {:?}); its log:\n{log}",
                    self.args
                );
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                if stream.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 7];
                    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                    if stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tidemark did not accept connections within {START_TIMEOUT:?}");
    }

    /// A `redis` crate connection.
    pub fn client(&self) -> redis::Connection {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client");
        client.get_connection().expect("connect")
    }

    /// A raw TCP connection with a read timeout.
    pub fn raw(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect raw");
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
        stream
    }

    /// SIGKILL and wait.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads from `stream` until it closes or times out; returns everything read.
pub fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// A client blocked ~300 ms before the write that serves it must be woken by that write:
/// not before it (`elapsed` ≥ 250 ms) and not by its own timeout (< 5 s).
pub fn assert_woken_by_the_write(elapsed: Duration) {
    assert!(
        elapsed >= Duration::from_millis(250),
        "woken too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "woken too late: {elapsed:?}"
    );
}
