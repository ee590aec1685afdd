//! The tus `Upload-Checksum` and `Upload-Metadata` parsers (`src/ingest/tus.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kino::fuzz::tus_headers(data));
