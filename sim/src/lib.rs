//! tidemark-sim: the deterministic simulator.
