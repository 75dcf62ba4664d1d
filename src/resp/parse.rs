//! RESP request parser.
