//! What kino's integration tests (`tests/it`) and benchmarks (`benches/`) share: clients and
//! measurements that need no part of kino, so both reach them as an ordinary dependency.
//!
//! # Layout
//! - [`accounts`]: the first account of a test server, signed up and holding an access token.
//! - [`deflate`]: zlib bombs (`zlib_zeros`) for the image-limit tests.
//! - [`http3`]: a small HTTP/3 client on h3 + h3-quinn that trusts only the given CA.
//! - [`noise`]: deterministic, incompressible filler bytes.
//! - [`memory`]: resident memory of this process or another one, from procfs.
//! - [`smtp`]: an SMTP sink that keeps the messages it is sent, and a silent black-hole listener.

pub mod accounts;
pub mod deflate;
pub mod http3;
pub mod memory;
pub mod noise;
pub mod smtp;

pub use accounts::first_account_token;
pub use deflate::zlib_zeros;
pub use http3::H3Client;
pub use memory::{rss_bytes, rss_bytes_of};
pub use noise::Noise;
pub use smtp::{BlackHole, Received, SmtpSink};
