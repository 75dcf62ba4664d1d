//! `tidemark check-aof DIR [--fix]`: placeholder, filled below.
