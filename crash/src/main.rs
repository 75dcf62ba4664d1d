//! tidemark-crash: SIGKILL crash matrix against the real binary.
fn main() {}
