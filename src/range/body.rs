//! The streaming body of a file response: static framing bytes and file ranges, read in chunks.
//!
//! File bytes are read with positioned reads (`pread`) on tokio's blocking pool, one chunk ahead
//! of the connection, so a slow disk never stalls an async worker and memory per response stays
//! at two chunks. `benches/reads.rs` compares this with memory-mapped slices; see the numbers in
//! `benches/README.md` and the note on `CHUNK`.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future as _;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::task::JoinHandle;

/// Bytes per read. 256 KiB keeps the per-response buffer small while making each blocking-pool
/// round trip carry enough data that its overhead (~10 µs) is under 1% at disk-cache speeds.
pub const CHUNK: u64 = 256 * 1024;

/// A piece of a response body.
#[derive(Debug, Clone)]
pub enum Segment {
    /// Bytes already in memory (multipart headers).
    Bytes(Bytes),
    /// A byte range of the file.
    File {
        /// The first byte.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

/// A body that streams segments of one open file.
pub struct FileBody {
    file: Arc<File>,
    segments: VecDeque<Segment>,
    /// A read in flight on the blocking pool, started before it is needed, and where it reads.
    pending: Option<(JoinHandle<io::Result<Bytes>>, u64)>,
    remaining: u64,
    delivery: Option<Arc<dyn Delivery>>,
}

/// Told which file bytes a response actually hands to the connection (view counting).
pub trait Delivery: Send + Sync {
    /// Called once before the body is built: a HEAD, or a body of `file_bytes` file bytes.
    /// Returns whether to report the deliveries of this response.
    fn begin(&self, head: bool, file_bytes: u64) -> bool;
    /// `[offset, offset + len)` of the file was handed to the connection.
    fn delivered(&self, offset: u64, len: u64);
}

impl FileBody {
    /// A body made of `segments` of `file`.
    pub fn new(file: Arc<File>, segments: Vec<Segment>) -> Self {
        let remaining = segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::File { len, .. } => *len,
            })
            .sum();
        let mut body = Self { file, segments: segments.into(), pending: None, remaining, delivery: None };
        body.prefetch();
        body
    }

    /// Reports every file chunk to `delivery` as it is handed to the connection; chunks read
    /// ahead but never polled out (an aborted response) are not reported.
    pub fn reporting_to(mut self, delivery: Arc<dyn Delivery>) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// Starts reading the next file chunk if the next segment is file bytes and none is in flight.
    fn prefetch(&mut self) {
        if self.pending.is_some() {
            return;
        }
        let Some(Segment::File { offset, len }) = self.segments.front_mut() else { return };
        let n = (*len).min(CHUNK);
        let at = *offset;
        *offset += n;
        *len -= n;
        if *len == 0 {
            self.segments.pop_front();
        }
        let file = self.file.clone();
        self.pending = Some((tokio::task::spawn_blocking(move || read_chunk(&file, at, n as usize)), at));
    }
}

/// Reads exactly `n` bytes at `offset`; a file that shrank under us is an error, not short data.
fn read_chunk(file: &File, offset: u64, n: usize) -> io::Result<Bytes> {
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if let Some((pending, at)) = this.pending.as_mut() {
            let at = *at;
            let result = ready!(Pin::new(pending).poll(cx));
            this.pending = None;
            let chunk = result.map_err(io::Error::other)??;
            this.remaining -= chunk.len() as u64;
            if let Some(delivery) = &this.delivery {
                delivery.delivered(at, chunk.len() as u64);
            }
            // Keep the next read going while this chunk is written out.
            this.prefetch();
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match this.segments.pop_front() {
            None => Poll::Ready(None),
            Some(Segment::Bytes(bytes)) => {
                this.remaining -= bytes.len() as u64;
                this.prefetch();
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Some(file_segment) => {
                this.segments.push_front(file_segment);
                this.prefetch();
                self.poll_frame(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn streams_segments_in_order_across_chunk_boundaries() {
        let data: Vec<u8> = (0..(CHUNK as usize * 2 + 123)).map(|i| (i % 251) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, &data).unwrap();
        let file = Arc::new(tmp.reopen().unwrap());
        let segments = vec![
            Segment::Bytes(Bytes::from_static(b"head")),
            Segment::File { offset: 5, len: CHUNK * 2 },
            Segment::Bytes(Bytes::from_static(b"mid")),
            Segment::File { offset: 0, len: 3 },
        ];
        let body = FileBody::new(file, segments);
        assert_eq!(body.size_hint().exact(), Some(4 + CHUNK * 2 + 3 + 3));
        let collected = body.collect().await.unwrap().to_bytes();
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&data[5..5 + CHUNK as usize * 2]);
        expected.extend_from_slice(b"mid");
        expected.extend_from_slice(&data[..3]);
        assert_eq!(collected, expected);
    }

    #[tokio::test]
    async fn a_file_shorter_than_promised_is_an_error() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, b"short").unwrap();
        let file = Arc::new(tmp.reopen().unwrap());
        let body = FileBody::new(file, vec![Segment::File { offset: 0, len: 100 }]);
        assert!(body.collect().await.is_err());
    }
}
