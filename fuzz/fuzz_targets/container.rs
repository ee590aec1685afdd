//! The MP4 and WebM container parsers (`src/media/container/`), given the input as a whole file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kino::fuzz::container(data));
