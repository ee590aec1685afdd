//! The streaming form reader (`src/ingest/multipart.rs`); byte 0 chooses the chunk size.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kino::fuzz::multipart(data));
