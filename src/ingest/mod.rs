//! Ingest: turning uploaded bytes into library files.

pub(crate) mod faststart;
pub(crate) mod tus;
pub(crate) mod upload;
