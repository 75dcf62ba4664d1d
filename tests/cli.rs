//! Runs the real `tidemark` binary with bad command lines and config files: each must exit
//! non-zero with a clear message on stderr and must not create the `--dir` it was given.
//! Also checks `--help` / `--version`, and that a refused start (port taken) exits non-zero.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tidemark");

/// Longest a refused start may take before the test calls it hung.
const START_REFUSAL_TIMEOUT_MS: u64 = 20_000;

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tidemark")
}

/// Runs tidemark with `flags` plus `--dir <tmp>/data` and asserts a refusal: exit code 2,
/// every `expected` text on stderr, and no data directory created.
fn assert_refused(flags: &[&str], expected: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut args: Vec<&str> = flags.to_vec();
    let data_arg = data.to_str().unwrap().to_string();
    args.extend(["--dir", data_arg.as_str()]);
    let out = run(&args, tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{flags:?} must exit 2; stderr: {stderr}"
    );
    for text in expected {
        assert!(
            stderr.contains(text),
            "{flags:?}: stderr lacks {text:?}: {stderr}"
        );
    }
    assert!(
        !data.exists(),
        "{flags:?} created the data dir before refusing"
    );
}

#[test]
fn bad_port_is_refused() {
    assert_refused(&["--port", "abc"], &["--port", "'abc'", "0 and 65535"]);
}

#[test]
fn bad_appendfsync_is_refused() {
    assert_refused(
        &["--appendfsync", "sometimes"],
        &["--appendfsync", "always, everysec, no"],
    );
}

#[test]
fn zero_shards_is_refused() {
    assert_refused(&["--shards", "0"], &["--shards", "1 and 256"]);
}

#[test]
fn unknown_flag_is_refused() {
    assert_refused(&["--nonsense", "1"], &["--nonsense"]);
}

#[test]
fn bad_config_file_line_is_refused_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("bad.conf");
    std::fs::write(&conf, "# tidemark\nport 7000\nappendonly perhaps\n").unwrap();
    let conf = conf.to_str().unwrap().to_string();
    assert_refused(&[conf.as_str()], &["bad.conf:3", "appendonly", "yes, no"]);
}

#[test]
fn missing_config_file_is_refused() {
    assert_refused(
        &["/nonexistent/tidemark.conf"],
        &["/nonexistent/tidemark.conf"],
    );
}

#[test]
fn help_lists_every_flag_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&["--help"], tmp.path());
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--bind",
        "--dir",
        "--dbfilename",
        "--appendonly",
        "--appendfsync",
        "--appenddirname",
        "--aof-fsync-timeout-ms",
        "--requirepass",
        "--maxclients",
        "--proto-max-bulk-len",
        "--hz",
        "--loglevel",
        "--logfile",
        "--save",
        "--shards",
        "--cross-shard-timeout-ms",
        "--cross-shard-queue-len",
        "--version",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}: {help}");
    }
    let out = run(&["--version"], tmp.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

/// A start the server refuses (here: its port is taken by a socket without SO_REUSEPORT)
/// must exit non-zero, name the failing shard on stderr, and log the banner first.
#[test]
fn refused_start_exits_non_zero_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = Command::new(BIN)
        .args([
            "--port",
            &port,
            "--dir",
            data.to_str().unwrap(),
            "--shards",
            "2",
        ])
        .current_dir(tmp.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_millis(START_REFUSAL_TIMEOUT_MS) {
            child.kill().unwrap();
            panic!("tidemark kept running on a taken port");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(
        !status.success(),
        "a refused start must exit non-zero: {stderr}"
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tidemark starting"),
        "banner missing: {stderr}"
    );
    assert!(
        stderr.contains("io_uring"),
        "driver check missing: {stderr}"
    );
    assert!(
        stderr.contains("Could not create server TCP listening socket"),
        "{stderr}"
    );
    assert!(data.is_dir(), "a valid config creates the data dir");
    drop(taken);
}

/// Waits for `child` to exit, killing it and failing after `timeout_ms`.
fn wait_exit(child: &mut std::process::Child, timeout_ms: u64) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_millis(timeout_ms) {
            child.kill().unwrap();
            panic!("tidemark did not exit within {timeout_ms} ms");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn logfile_receives_the_log() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("tidemark.log");
    let mut child = Command::new(BIN)
        .args([
            "--port",
            &port,
            "--logfile",
            log.to_str().unwrap(),
            "--dir",
            "d",
        ])
        .current_dir(tmp.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, START_REFUSAL_TIMEOUT_MS);
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).expect("log file written");
    assert!(text.contains("tidemark starting"), "{text}");
    assert!(text.contains("io_uring is working"), "{text}");
    assert!(text.contains("Address already in use"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI colours in a log file: {text}"
    );
    drop(taken);
}

#[test]
fn unwritable_logfile_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        &["--logfile", "/nonexistent/dir/t.log", "--dir", "d"],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/dir/t.log"), "{stderr}");
    assert!(!tmp.path().join("d").exists());
}

/// SIGTERM while serving exits 0. Until `run_shard` serves (it is a stub that refuses to
/// start with "not built yet"), the server exits on its own and only that is checked.
#[test]
fn sigterm_exits_zero_while_serving() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--dir", "d", "--shards", "2"])
        .current_dir(tmp.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
            assert!(
                stderr.contains("not built yet"),
                "exited on its own: {stderr}"
            );
            return;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut child, START_REFUSAL_TIMEOUT_MS);
    assert_eq!(status.code(), Some(0), "SIGTERM must exit 0");
}

/// `--port 0` is resolved once in main, so the banner (and every shard) sees a real port.
#[test]
fn port_zero_is_resolved_before_the_shards_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--dir", "d", "--shards", "2"])
        .current_dir(tmp.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut text = String::new();
    let started = Instant::now();
    while !text.contains("tidemark starting") {
        let mut chunk = [0u8; 4096];
        let n = std::io::Read::read(&mut stderr, &mut chunk).unwrap();
        assert!(n > 0, "no banner before exit: {text}");
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no banner: {text}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let port: u32 = text
        .split("port=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no port in the banner: {text}"));
    assert!(port > 0 && port <= 65535, "banner port {port}: {text}");
}
