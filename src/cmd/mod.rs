//! Command table and command implementations.
