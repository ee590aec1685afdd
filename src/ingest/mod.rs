//! Ingest: turning uploaded bytes into library files.

pub(crate) mod body;
pub(crate) mod faststart;
pub(crate) mod multipart;
pub(crate) mod sweep;
pub(crate) mod tus;
pub(crate) mod upload;
