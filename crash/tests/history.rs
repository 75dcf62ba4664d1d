//! `tidemark-crash history` in CI, bounded: ≥ 10 concurrent real clients and ≥ 10,000
//! operations against the real `tidemark` binary over loopback (`appendfsync always`),
//! without and with kill -9 + restart cycles; the verdict must be `linearizable` (an
//! `unknown` verdict is a failure, not a pass), and a corrupted (stale) GET in a real
//! history must be reported `not-linearizable`.
//!
//! The server binary is the workspace's `tidemark` next to this test's profile directory
//! (`cargo nextest run --workspace` builds it); if it is missing it is built with cargo.
//!
//! What can fail here: a verdict other than the expected one, too few operations/clients,
//! or the tool failing to start the server.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Clients of every run.
const CLIENTS: u32 = 10;
/// Operations of the full-size runs.
const OPS: u64 = 10_000;
/// Longest a single run may take, so CI stays bounded.
const RUN_DURATION_MAX: Duration = Duration::from_secs(60);

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    let binary = profile_dir.join("tidemark");
    if !binary.exists() {
        let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        build.args(["build", "-p", "tidemark", "--bin", "tidemark"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build of tidemark failed");
    }
    assert!(binary.exists(), "no server binary at {}", binary.display());
    binary
}

/// Runs `tidemark-crash history` with `extra` arguments; returns its output and the
/// summary line.
fn history(name: &str, extra: &[&str]) -> (Output, String) {
    let dir = std::env::temp_dir().join(format!("tidemark-history-{name}-{}", std::process::id()));
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_tidemark-crash"))
        .arg("history")
        .arg("--binary")
        .arg(server_binary())
        .arg("--dir")
        .arg(&dir)
        .arg("--clients")
        .arg(CLIENTS.to_string())
        .args(extra)
        .output()
        .expect("run tidemark-crash history");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    assert!(
        started.elapsed() < RUN_DURATION_MAX,
        "run took {:?}",
        started.elapsed()
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("history: clients="))
        .unwrap_or_else(|| panic!("no summary line in {stdout}\n{stderr}"))
        .to_string();
    (output, summary)
}

/// The value of `name=` in the summary line.
fn field(summary: &str, name: &str) -> String {
    summary
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {summary}"))
        .to_string()
}

fn number(summary: &str, name: &str) -> u64 {
    field(summary, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} not a number in {summary}"))
}

fn assert_full_size_pass(output: &Output, summary: &str) {
    assert_eq!(field(summary, "verdict"), "linearizable", "{summary}");
    assert!(
        output.status.success(),
        "exit {:?}: {summary}",
        output.status
    );
    assert!(number(summary, "clients") >= 10, "{summary}");
    assert!(number(summary, "ops") >= OPS, "{summary}");
    assert!(number(summary, "keys") >= 10, "{summary}");
}

#[test]
fn real_history_without_kills_is_linearizable() {
    let ops = OPS.to_string();
    let (output, summary) = history(
        "nokill",
        &[
            "--ops", &ops, "--kills", "0", "--shards", "2", "--seed", "7",
        ],
    );
    assert_full_size_pass(&output, &summary);
    assert_eq!(number(&summary, "restarts"), 0, "{summary}");
    assert_eq!(number(&summary, "errors"), 0, "{summary}");
}

#[test]
fn real_history_across_kill9_restarts_is_linearizable() {
    let ops = OPS.to_string();
    let (output, summary) = history("kill9", &["--ops", &ops, "--kills", "4", "--seed", "11"]);
    assert_full_size_pass(&output, &summary);
    assert_eq!(number(&summary, "restarts"), 4, "{summary}");
    // Every kill leaves the in-flight commands with an unknown outcome.
    assert!(number(&summary, "unknown") >= 1, "{summary}");
}

#[test]
fn a_stale_get_in_a_real_history_is_caught() {
    let (output, summary) = history(
        "stale",
        &[
            "--ops",
            "3000",
            "--kills",
            "2",
            "--seed",
            "5",
            "--corrupt-stale-get",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(field(&summary, "verdict"), "not-linearizable", "{summary}");
    assert_eq!(output.status.code(), Some(1), "{summary}");
    assert!(stdout.contains("is not linearizable"), "{stdout}");
}

#[test]
fn an_undecided_check_is_not_a_pass() {
    // One search step per key cannot decide any key: the verdict is `unknown`, and the
    // tool must fail (exit 1), never report it as linearizable.
    let (output, summary) = history(
        "unknown",
        &["--ops", "1000", "--kills", "0", "--budget-steps", "1"],
    );
    assert_eq!(field(&summary, "verdict"), "unknown", "{summary}");
    assert_eq!(output.status.code(), Some(1), "{summary}");
}
