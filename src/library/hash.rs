//! Content hashes: BLAKE3 over a file's bytes, the source of its strong ETag, with a count of
//! the bytes hashed so the one-pass promise of ingest is checked, not just written down.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the bytes every [`ContentHasher`] it made has hashed.
#[derive(Debug, Default, Clone)]
pub(crate) struct HashMeter(Arc<AtomicU64>);

impl HashMeter {
    /// A new content hasher counted by this meter.
    pub(crate) fn hasher(&self) -> ContentHasher {
        ContentHasher { inner: blake3::Hasher::new(), meter: self.clone() }
    }

    /// The bytes hashed so far.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A BLAKE3 hasher of file content; also a `Write` sink, so a copy can hash what it writes.
pub(crate) struct ContentHasher {
    inner: blake3::Hasher,
    meter: HashMeter,
}

/// Read buffer for hashing a file: large enough for BLAKE3's SIMD paths, small enough to stay
/// flat in memory.
const READ_CHUNK: usize = 256 * 1024;

impl ContentHasher {
    /// Adds `bytes`.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.meter.0.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    /// Adds everything `reader` yields.
    pub(crate) fn update_reader(&mut self, mut reader: impl Read) -> io::Result<()> {
        let mut buf = vec![0; READ_CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => self.update(&buf[..n]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// The hash as 64 lowercase hex digits, as the catalog stores it.
    pub(crate) fn finish(self) -> String {
        self.inner.finalize().to_hex().to_string()
    }
}

impl Write for ContentHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_blake3_hex_and_every_byte_is_counted() {
        let meter = HashMeter::default();
        let mut a = meter.hasher();
        a.update(b"hello ");
        a.write_all(b"world").unwrap();
        let mut b = meter.hasher();
        b.update_reader(&b"hello world"[..]).unwrap();
        assert_eq!(a.finish(), blake3::hash(b"hello world").to_hex().to_string());
        assert_eq!(b.finish(), blake3::hash(b"hello world").to_hex().to_string());
        assert_eq!(meter.bytes(), 22);
    }
}
