//! Shared by the crash crate's tests: where the real `tidemark` binary is.
//!
//! The `tidemark` binary is not a target of this package, so `CARGO_BIN_EXE_tidemark` does
//! not exist here: `tidemark_binary` builds it with the cargo that runs the test (same
//! profile, same target dir; a no-op when the workspace build already made it), or takes
//! `TIDEMARK_BIN` if set.
//!
//! What can fail here: the cargo build (the test panics with its status).
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The profile directory of this test executable (`target/<profile>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/matrix-<hash>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test executable under target/<profile>/deps")
        .to_path_buf()
}

/// Path of an up-to-date `tidemark` binary.
pub fn tidemark_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TIDEMARK_BIN") {
        return PathBuf::from(path);
    }
    let dir = profile_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = Command::new(cargo);
    build.args(["build", "-q", "-p", "tidemark", "--bin", "tidemark"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .expect("run cargo build for the tidemark binary");
    assert!(
        status.success(),
        "cargo build of the tidemark binary failed"
    );
    let binary = dir.join("tidemark");
    assert!(
        binary.exists(),
        "no tidemark binary at {}",
        binary.display()
    );
    binary
}
