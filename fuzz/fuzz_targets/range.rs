//! The `Range` header parser and its decision (`src/range/parse.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kino::fuzz::range(data));
