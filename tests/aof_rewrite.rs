//! The multi-part AOF against the real binary: BGREWRITEAOF under the real io_uring
//! driver, kill -9, restart, every key present; `tidemark check-aof` on a good directory
//! (exit 0) and on one with a corrupted middle record (exit 1, offset reported).
//!
//! What can fail here: a rewrite that never finishes, a key lost across rewrite + kill -9,
//! check-aof accepting corruption or rejecting a valid directory.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;
use redis::Commands;

const FLAGS: [&str; 6] = [
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--shards",
    "2",
];

fn info_persistence(con: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("persistence").query(con).unwrap()
}

fn wait_rewrite_done(con: &mut redis::Connection) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = info_persistence(con);
        if info.contains("aof_rewrite_in_progress:0") {
            return info;
        }
        assert!(Instant::now() < deadline, "rewrite did not finish: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check_aof(dir: &std::path::Path, fix: bool) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    cmd.arg("check-aof").arg(dir);
    if fix {
        cmd.arg("--fix");
    }
    let out = cmd.output().expect("run check-aof");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn bgrewriteaof_then_kill9_keeps_every_key_and_check_aof_judges_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &FLAGS);
    let port = server.port;
    let mut con = server.client();
    for i in 0..200 {
        let _: () = con.set(format!("key:{i}"), format!("value-{i}")).unwrap();
    }
    let _: i64 = con.incr("counter", 5).unwrap();
    let reply: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    assert_eq!(reply, "Background append only file rewriting started");
    // Writes while (or right after) the rewrite runs.
    for i in 200..300 {
        let _: () = con.set(format!("key:{i}"), format!("value-{i}")).unwrap();
    }
    let info = wait_rewrite_done(&mut con);
    assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
    let _: i64 = con.incr("counter", 1).unwrap();
    server.kill9();
    drop(con);

    let aof_dir = dir.path().join("appendonlydir");
    let (code, out) = check_aof(&aof_dir, false);
    assert_eq!(code, 0, "check-aof on a good dir: {out}");
    assert!(out.contains("base") && out.contains("OK"), "{out}");

    let server = Server::start_on(dir.path(), port, &FLAGS);
    let mut con = server.client();
    for i in 0..300 {
        let value: Option<String> = con.get(format!("key:{i}")).unwrap();
        assert_eq!(
            value.as_deref(),
            Some(format!("value-{i}").as_str()),
            "key:{i}"
        );
    }
    let counter: i64 = con.get("counter").unwrap();
    assert_eq!(counter, 6);
    drop(con);
    drop(server);
}

#[test]
fn check_aof_reports_a_corrupted_middle_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        dir.path(),
        &["--appendonly", "yes", "--appendfsync", "always"],
    );
    let mut con = server.client();
    for i in 0..50 {
        let _: () = con
            .set(format!("k{i}"), "some value to fill the record")
            .unwrap();
    }
    server.kill9();
    drop(con);
    let aof_dir = dir.path().join("appendonlydir");
    assert_eq!(check_aof(&aof_dir, false).0, 0);
    let incr = std::fs::read_dir(&aof_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .expect("an incr file");
    let mut bytes = std::fs::read(&incr).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&incr, &bytes).unwrap();
    let (code, out) = check_aof(&aof_dir, false);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BAD at offset"), "{out}");
    // --fix never truncates corruption in the middle.
    let (code, out) = check_aof(&aof_dir, true);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        std::fs::read(&incr).unwrap().len(),
        bytes.len(),
        "file untouched"
    );
}
