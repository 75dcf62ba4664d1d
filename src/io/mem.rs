//! A fault-free in-memory `Disk` for unit tests inside `src/`.
