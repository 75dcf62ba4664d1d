//! RESP encoder.
