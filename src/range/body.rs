//! The streaming body of a file response: static framing bytes and file ranges, read in chunks.
//!
//! File bytes that are in the page cache — nearly every request of a busy server — are read
//! right where the connection asks for them, with `preadv2(RWF_NOWAIT)`: the kernel copies what
//! it has and refuses instead of waiting for a disk. Only then does the body move to positioned
//! reads on tokio's blocking pool, one chunk ahead of the connection, so a slow disk never stalls
//! an async worker. The profile behind this: with every chunk on the blocking pool, a 64 KiB
//! range spent more time in thread wake-ups and the pool's lock than in copying bytes
//! (`benches/README.md`, "one 64 KiB range").

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use rustix::io::Errno;
use tokio::task::JoinHandle;

/// Bytes per read. 256 KiB keeps the per-response buffer small while making each blocking-pool
/// round trip carry enough data that its overhead (~10 µs) is under 1% at disk-cache speeds.
pub const CHUNK: u64 = 256 * 1024;

/// Set once the kernel or filesystem turns `RWF_NOWAIT` down, so no later response asks again.
static NOWAIT_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

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
    /// Whether file bytes come from the page cache on the connection's task (until a read
    /// would wait for the disk) or from the blocking pool.
    inline: bool,
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
        let inline = !NOWAIT_UNSUPPORTED.load(Ordering::Relaxed);
        Self { file, segments: segments.into(), inline, pending: None, remaining, delivery: None }
    }

    /// The same body reading every chunk on the blocking pool, as it does for a cold file; for
    /// tests and `benches/reads.rs`, which compare the two paths (the server never asks).
    #[cfg(any(test, feature = "bench"))]
    #[doc(hidden)]
    pub fn on_blocking_pool(mut self) -> Self {
        self.inline = false;
        self
    }

    /// Reports every file chunk to `delivery` as it is handed to the connection; chunks read
    /// ahead but never polled out (an aborted response) are not reported.
    pub fn reporting_to(mut self, delivery: Arc<dyn Delivery>) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// Takes up to `max` bytes off the front file segment; returns where they start and how
    /// many there are.
    fn take_file_bytes(&mut self, max: u64) -> Option<(u64, u64)> {
        let Some(Segment::File { offset, len }) = self.segments.front_mut() else { return None };
        let n = (*len).min(max);
        let at = *offset;
        *offset += n;
        *len -= n;
        if *len == 0 {
            self.segments.pop_front();
        }
        Some((at, n))
    }

    /// Gives back the unread tail of bytes taken with [`Self::take_file_bytes`].
    fn untake_file_bytes(&mut self, offset: u64, len: u64) {
        match self.segments.front_mut() {
            Some(Segment::File { offset: next, len: next_len }) if offset + len == *next => {
                *next = offset;
                *next_len += len;
            }
            _ => self.segments.push_front(Segment::File { offset, len }),
        }
    }

    /// Starts reading the next file chunk on the blocking pool if the next segment is file
    /// bytes and none is in flight.
    fn prefetch(&mut self) {
        if self.pending.is_some() {
            return;
        }
        let Some((at, n)) = self.take_file_bytes(CHUNK) else { return };
        let file = self.file.clone();
        self.pending = Some((tokio::task::spawn_blocking(move || read_chunk(&file, at, n as usize)), at));
    }

    /// Reads the next chunk from the page cache without waiting for the disk: `None` when the
    /// bytes are not cached (the body then moves to the blocking pool for good).
    fn read_cached(&mut self) -> Option<io::Result<(u64, Bytes)>> {
        let (at, n) = self.take_file_bytes(CHUNK)?;
        match read_chunk_nowait(&self.file, at, n as usize) {
            Ok(chunk) => {
                let got = chunk.len() as u64;
                if got == 0 {
                    return Some(Err(io::ErrorKind::UnexpectedEof.into()));
                }
                // Part of the chunk was cached: send that, the rest comes next time.
                if got < n {
                    self.untake_file_bytes(at + got, n - got);
                }
                Some(Ok((at, chunk)))
            }
            Err(error) => {
                self.untake_file_bytes(at, n);
                match error {
                    Errno::AGAIN => {}
                    // Kernels before 4.14 and some filesystems do not know the flag.
                    Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS => {
                        NOWAIT_UNSUPPORTED.store(true, Ordering::Relaxed);
                    }
                    other => return Some(Err(other.into())),
                }
                self.inline = false;
                None
            }
        }
    }

    /// Hands a chunk of file bytes read at `at` to the connection.
    fn deliver(&mut self, at: u64, chunk: Bytes) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.remaining -= chunk.len() as u64;
        if let Some(delivery) = &self.delivery {
            delivery.delivered(at, chunk.len() as u64);
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

/// Reads exactly `n` bytes at `offset`; a file that shrank under us is an error, not short data.
///
/// The buffer is never zeroed: the kernel writes into its spare capacity (rustix's
/// `spare_capacity`, which grows the length by what was read). Zero-filling a 64 KiB buffer cost
/// more instructions than the rest of a range request (`benches/README.md`, callgrind).
fn read_chunk(file: &File, offset: u64, n: usize) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(n);
    while buf.len() < n {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than its range",
                ));
            }
            Ok(_) | Err(Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    // `with_capacity` promises at least `n`: the kernel may have filled a little more.
    buf.truncate(n);
    Ok(Bytes::from(buf))
}

/// Reads up to `n` bytes at `offset` that are already in the page cache; `EAGAIN` when none are.
fn read_chunk_nowait(file: &File, offset: u64, n: usize) -> Result<Bytes, Errno> {
    let mut buf = Vec::with_capacity(n);
    preadv2_nowait(file, &mut buf, offset)?;
    // `with_capacity` promises at least `n`: never hand out bytes past the range.
    buf.truncate(n);
    Ok(Bytes::from(buf))
}

/// `preadv2(RWF_NOWAIT)` into the spare capacity of `buf`, whose length grows by the bytes read.
///
/// rustix's `preadv2` takes only initialised slices (`IoSliceMut`), which would mean zeroing
/// the buffer first, and no crate in the tree reads with flags into uninitialised memory; so
/// this is the one `unsafe` of the range engine, the `libc` call itself.
#[allow(unsafe_code)]
fn preadv2_nowait(file: &File, buf: &mut Vec<u8>, offset: u64) -> Result<usize, Errno> {
    use std::os::fd::AsRawFd as _;
    let offset = libc::off_t::try_from(offset).map_err(|_| Errno::OVERFLOW)?;
    let len = buf.len();
    let spare = buf.spare_capacity_mut();
    let iov = libc::iovec { iov_base: spare.as_mut_ptr().cast(), iov_len: spare.len() };
    // SAFETY: `iov` describes `spare`, the uninitialised tail of `buf`'s allocation, and nothing
    // touches `buf` during the call; the descriptor is `file`'s, open for the whole call. The
    // kernel writes at most `iov_len` bytes there, contiguously from the start, and returns how
    // many it wrote (negative: none, errno says why). So after it returned `got >= 0` the first
    // `len + got` bytes of `buf` are initialised and `len + got <= capacity`: `set_len` holds.
    unsafe {
        let got = libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT);
        let got = usize::try_from(got).map_err(|_| last_errno())?;
        buf.set_len(len + got);
        Ok(got)
    }
}

/// The `errno` of the libc call that just failed.
fn last_errno() -> Errno {
    Errno::from_raw_os_error(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
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
            // Keep the next read going while this chunk is written out.
            this.prefetch();
            return this.deliver(at, chunk);
        }
        match this.segments.front() {
            None => Poll::Ready(None),
            Some(Segment::Bytes(_)) => {
                let Some(Segment::Bytes(bytes)) = this.segments.pop_front() else { unreachable!() };
                this.remaining -= bytes.len() as u64;
                if !this.inline {
                    this.prefetch();
                }
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Some(Segment::File { .. }) => {
                if this.inline {
                    match this.read_cached() {
                        Some(Ok((at, chunk))) => return this.deliver(at, chunk),
                        Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                        None => {}
                    }
                }
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

    fn temp_file(data: &[u8]) -> (tempfile::NamedTempFile, Arc<File>) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut tmp, data).unwrap();
        let file = Arc::new(tmp.reopen().unwrap());
        (tmp, file)
    }

    #[tokio::test]
    async fn streams_segments_in_order_across_chunk_boundaries_on_both_read_paths() {
        let data: Vec<u8> = (0..(CHUNK as usize * 2 + 123)).map(|i| (i % 251) as u8).collect();
        let (_tmp, file) = temp_file(&data);
        let segments = vec![
            Segment::Bytes(Bytes::from_static(b"head")),
            Segment::File { offset: 5, len: CHUNK * 2 },
            Segment::Bytes(Bytes::from_static(b"mid")),
            Segment::File { offset: 0, len: 3 },
        ];
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&data[5..5 + CHUNK as usize * 2]);
        expected.extend_from_slice(b"mid");
        expected.extend_from_slice(&data[..3]);
        for pool in [false, true] {
            let body = FileBody::new(file.clone(), segments.clone());
            let body = if pool { body.on_blocking_pool() } else { body };
            assert_eq!(body.size_hint().exact(), Some(4 + CHUNK * 2 + 3 + 3));
            let collected = body.collect().await.unwrap().to_bytes();
            assert_eq!(collected, expected, "blocking pool: {pool}");
        }
    }

    #[tokio::test]
    async fn a_file_shorter_than_promised_is_an_error_on_both_read_paths() {
        let (_tmp, file) = temp_file(b"short");
        let body = FileBody::new(file.clone(), vec![Segment::File { offset: 0, len: 100 }]);
        assert!(body.collect().await.is_err());
        let body = FileBody::new(file, vec![Segment::File { offset: 0, len: 100 }]).on_blocking_pool();
        assert!(body.collect().await.is_err());
    }

    #[tokio::test]
    async fn cached_bytes_are_ready_at_the_first_poll_without_the_blocking_pool() {
        let (_tmp, file) = temp_file(&[7u8; 65536]);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut body = FileBody::new(file.clone(), vec![Segment::File { offset: 0, len: 65536 }]);
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) else {
            panic!("a page-cached chunk should be read inline");
        };
        assert_eq!(frame.into_data().unwrap().len(), 65536);
        assert!(body.is_end_stream());
        // The pool path cannot answer at once: the read is handed to another thread.
        let mut body = FileBody::new(file, vec![Segment::File { offset: 0, len: 65536 }]).on_blocking_pool();
        assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
    }

    #[test]
    fn reads_into_uninitialised_capacity_return_exactly_the_bytes_at_their_offset() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let (_tmp, file) = temp_file(&data);
        for (offset, n) in [(0, 65536), (1, 4096), (12_345, 50_000), (99_999, 1)] {
            let at = offset as usize;
            assert_eq!(read_chunk(&file, offset, n).unwrap(), data[at..at + n], "pool, {offset}+{n}");
            let cached = read_chunk_nowait(&file, offset, n).unwrap();
            assert_eq!(cached, data[at..at + n], "cached, {offset}+{n}");
        }
    }

    #[test]
    fn a_cached_read_past_the_end_is_short_and_one_at_the_end_is_empty() {
        let (_tmp, file) = temp_file(&[1, 2, 3, 4, 5]);
        // Short: the buffer has room for 64 KiB, the length says what the kernel wrote.
        assert_eq!(read_chunk_nowait(&file, 2, 65536).unwrap(), &[3, 4, 5][..]);
        assert!(read_chunk_nowait(&file, 5, 65536).unwrap().is_empty());
        assert!(read_chunk_nowait(&file, 1 << 40, 16).unwrap().is_empty());
        // The pool's read must fill the whole chunk: a short file is an error, not short data.
        let error = read_chunk(&file, 2, 4).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read_chunk(&file, 1, 4).unwrap(), &[2, 3, 4, 5][..]);
    }

    #[test]
    fn a_cached_read_appends_after_the_bytes_already_in_the_buffer() {
        let (_tmp, file) = temp_file(b"abcdef");
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(b"xy");
        assert_eq!(preadv2_nowait(&file, &mut buf, 3).unwrap(), 3);
        assert_eq!(buf, b"xydef");
        // No room left: nothing is read, nothing is written past the capacity.
        let mut full = Vec::with_capacity(2);
        full.extend_from_slice(b"zz");
        let room = full.capacity() - full.len();
        assert_eq!(preadv2_nowait(&file, &mut full, 0).unwrap(), room.min(6));
    }

    #[test]
    fn a_failed_cached_read_reports_the_kernels_errno_and_initialises_nothing() {
        let (tmp, _) = temp_file(b"data");
        let write_only = std::fs::OpenOptions::new().write(true).open(tmp.path()).unwrap();
        let mut buf = Vec::with_capacity(16);
        assert_eq!(preadv2_nowait(&write_only, &mut buf, 0), Err(Errno::BADF));
        assert!(buf.is_empty());
        assert_eq!(preadv2_nowait(&write_only, &mut buf, u64::MAX), Err(Errno::OVERFLOW));
    }

    #[test]
    fn unread_bytes_go_back_in_front_of_the_segment_they_came_from() {
        let (_tmp, file) = temp_file(b"");
        let mut body = FileBody::new(file, vec![Segment::File { offset: 10, len: 100 }]);
        assert_eq!(body.take_file_bytes(60), Some((10, 60)));
        body.untake_file_bytes(40, 30);
        assert!(matches!(body.segments.front(), Some(Segment::File { offset: 40, len: 70 })));
        assert_eq!(body.take_file_bytes(1000), Some((40, 70)));
        body.untake_file_bytes(100, 10);
        assert!(matches!(body.segments.front(), Some(Segment::File { offset: 100, len: 10 })));
    }
}
