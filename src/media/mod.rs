//! What a media file is, read from its bytes alone: its type (sniffed from magic numbers, never
//! from its name) and, for MP4 and WebM, the container's facts and byte→time index.
//!
//! Pure parsing with no I/O beyond the reader it is given, so the catalog (`db`), the library,
//! ingest and view counting can all depend on it without depending on each other.

pub(crate) mod container;
pub(crate) mod sniff;
