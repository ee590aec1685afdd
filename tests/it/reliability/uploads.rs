//! Upload attacks against the binary.
