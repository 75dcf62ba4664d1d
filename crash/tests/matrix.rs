//! The reduced crash matrix CI runs: one cell for each column value (shards 1, 2, 4;
//! `always` and `everysec`; plain, rewrite in flight, BGSAVE in flight) through the real
//! `tidemark-crash matrix` against the real `tidemark` binary, kill -9 and restart each
//! cycle. The full matrix is `scripts/crash-matrix.sh`.
//!
//! The `tidemark` binary comes from `common::tidemark_binary`.
//!
//! What can fail here: the build of the server, a violated durability check (the table
//! row says FAIL and the matrix exits 1), or no kill landing mid-operation.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::Command;

mod common;
use common::{profile_dir, tidemark_binary};

/// One row of the printed table: (cell, result, kills mid-op, operations issued).
fn parse_row(line: &str) -> Option<(String, String, u32, u32)> {
    let cols: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
    if cols.len() != 10 || cols[1].parse::<u32>().is_err() {
        return None;
    }
    let (mid, issued) = match cols[6].split_once('/') {
        Some((mid, rest)) => (
            mid.parse().ok()?,
            rest.split_whitespace().next()?.parse().ok()?,
        ),
        None => (0, 0),
    };
    Some((cols[0].to_string(), cols[9].to_string(), mid, issued))
}

#[test]
fn reduced_matrix_survives_kill9_mid_rewrite_mid_bgsave_and_plain() {
    let binary = tidemark_binary();
    let dir = profile_dir().join(format!("crash-matrix-test-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_tidemark-crash"))
        .args(["matrix", "--binary"])
        .arg(&binary)
        .args([
            "--cells",
            "2:always:rewrite,1:everysec:bgsave,4:always:plain",
            "--cycles",
            "3",
            "--clients",
            "4",
            "--run-ms-max",
            "300",
            "--fill-keys",
            "30000",
            "--seed",
            "7",
            "--dir",
        ])
        .arg(&dir)
        .output()
        .expect("run tidemark-crash matrix");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "matrix failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    println!("{stdout}");
    let rows: Vec<_> = stdout.lines().filter_map(parse_row).collect();
    let cells: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        cells,
        ["2:always:rewrite", "1:everysec:bgsave", "4:always:plain"],
        "table:\n{stdout}"
    );
    assert!(rows.iter().all(|r| r.1 == "PASS"), "table:\n{stdout}");
    let issued: u32 = rows.iter().map(|r| r.3).sum();
    let mid: u32 = rows.iter().map(|r| r.2).sum();
    assert_eq!(issued, 6, "one operation per in-flight cycle:\n{stdout}");
    assert!(
        mid >= 1,
        "no kill landed while the rewrite/save ran:\n{stdout}\n{stderr}"
    );
}
