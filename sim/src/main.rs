//! The tidemark-sim command line.
fn main() {}
