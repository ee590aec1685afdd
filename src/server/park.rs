//! Parking idle HTTP/1.1 connections: no HTTP buffers held while a keep-alive client is quiet.
//!
//! hyper keeps a read buffer (grown to 16 KiB after the first request) and an 8 KiB write buffer
//! for the whole life of an HTTP/1.1 connection, and offers no way to release them between
//! requests: 10,000 idle keep-alive connections held ~240 MB. Like nginx, which frees a keep-alive
//! connection's buffers until its next request, kino ends hyper's connection once the client has
//! been quiet for [`PARK_AFTER`], keeps only the socket, and starts a new hyper connection on it
//! when the next request arrives.
//!
//! hyper only gives the socket back from a connection that ended cleanly, which it does when the
//! client closes between requests. [`Parkable`] therefore reports end-of-stream to hyper when
//! parking was asked for — but only when hyper cannot be holding part of a request: nothing in
//! flight, and the last bytes read ended a request head (`\r\n\r\n`) that hyper has since turned
//! into a request. Anything else (a slow client halfway through its headers) is left to run, so
//! parking never loses a byte; bytes hyper did read but not use come back as [`Parkable::unread`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::connection::Activity;

/// How long a keep-alive connection must be quiet before it is parked. Long enough that a
/// client sending requests back to back (a player's burst of range requests, a benchmark)
/// keeps its connection state; short next to the seconds a player waits between fetches, and
/// short enough that a flood of new connections never has many unparked at once (each holds
/// ~24 KiB of hyper buffers until parked).
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(100);

/// Where a connection is in parking, shared by its driver and its [`Parkable`] IO.
#[derive(Debug, Default)]
pub(crate) struct Park(AtomicU8);

impl Park {
    const SERVING: u8 = 0;
    const REQUESTED: u8 = 1;
    const PARKED: u8 = 2;

    /// The driver asks hyper to end at its next read, if it holds no part of a request (and is
    /// not already ending for a park).
    pub(crate) fn request(&self) {
        let _ = self.0.compare_exchange(Self::SERVING, Self::REQUESTED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Back to serving: the parked connection has a new request.
    pub(crate) fn serve(&self) {
        self.0.store(Self::SERVING, Ordering::Release);
    }

    /// Withdraws a request hyper did not act on (it held part of a request). One it did act on
    /// stays: hyper may still be flushing its last response before it ends.
    pub(crate) fn withdraw(&self) {
        let _ = self.0.compare_exchange(Self::REQUESTED, Self::SERVING, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Whether the IO ended hyper's connection to park it.
    pub(crate) fn is_parked(&self) -> bool {
        self.0.load(Ordering::Acquire) == Self::PARKED
    }

    fn is_requested(&self) -> bool {
        self.0.load(Ordering::Acquire) == Self::REQUESTED
    }

    fn parked(&self) {
        self.0.store(Self::PARKED, Ordering::Release);
    }
}

/// A socket whose readiness can be awaited without reading from it.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Resolves when the peer has sent something (or closed).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl Socket for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
}

impl<S: Socket> Socket for TlsStream<S> {
    /// The TCP socket's readiness: when hyper last read, rustls had no plaintext left over
    /// (the read was pending), so anything new arrives on the socket first.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_ref().0.poll_read_ready(cx)
    }
}

/// The IO hyper's HTTP/1.1 connection runs on: the socket, plus the end-of-stream it reports
/// when the connection is to be parked. The driver requests parking, polls hyper once, and
/// goes back to serving if hyper did not end (it was holding part of a request).
pub(crate) struct Parkable<S> {
    socket: S,
    /// Bytes read from the socket by an earlier hyper connection but not used; served first.
    unread: Bytes,
    activity: Arc<Activity>,
    park: Arc<Park>,
    /// The last four bytes read, to see whether the latest read ended a request head.
    tail: [u8; 4],
    /// How many requests had started when bytes were last read.
    requests_at_last_read: u64,
    /// Whether the socket last refused bytes (a write or flush was pending) and no flush has
    /// completed since: hyper then still holds response bytes in its write buffer, which
    /// `into_parts` would drop. A response whose body is done is not yet a sent response.
    write_blocked: bool,
}

impl<S: Socket> Parkable<S> {
    /// Wraps `socket`, which `park` parks.
    pub(crate) fn new(socket: S, activity: Arc<Activity>, park: Arc<Park>) -> Self {
        let requests_at_last_read = activity.requests_started();
        Self {
            socket,
            unread: Bytes::new(),
            activity,
            park,
            tail: [0; 4],
            requests_at_last_read,
            write_blocked: false,
        }
    }

    /// Gives back bytes hyper read but did not use, to be read again first. Copied: hyper's
    /// bytes are a view of its whole read buffer, which would otherwise stay allocated.
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        debug_assert!(self.unread.is_empty());
        self.unread = Bytes::copy_from_slice(bytes);
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &S {
        &self.socket
    }

    /// Whether hyper can be holding no part of a request and no unsent response: every byte read
    /// so far ended a request head that has since become a request, no request is in flight,
    /// and the socket took everything hyper wrote.
    fn nothing_pending(&self) -> bool {
        !self.write_blocked
            && self.unread.is_empty()
            && &self.tail == b"\r\n\r\n"
            && self.activity.requests_started() > self.requests_at_last_read
            && !self.activity.is_busy()
    }

    fn record(&mut self, read: &[u8]) {
        if !read.is_empty() {
            push_tail(&mut self.tail, read);
            self.requests_at_last_read = self.activity.requests_started();
        }
    }
}

/// Shifts the bytes of `read` into `tail`, which keeps the last four bytes of the stream.
fn push_tail(tail: &mut [u8; 4], read: &[u8]) {
    let keep = 4usize.saturating_sub(read.len());
    tail.copy_within(4 - keep.., 0);
    let take = read.len().min(4);
    tail[keep..].copy_from_slice(&read[read.len() - take..]);
}

impl<S: Socket> AsyncRead for Parkable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        if this.park.is_requested() && this.nothing_pending() {
            this.park.parked();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.socket).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            this.record(&buf.filled()[before..]);
        }
        poll
    }
}

impl<S: Socket> AsyncWrite for Parkable<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.socket).poll_write(cx, buf);
        self.write_blocked |= poll.is_pending();
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.socket).poll_write_vectored(cx, bufs);
        self.write_blocked |= poll.is_pending();
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.socket).poll_flush(cx);
        // hyper flushes once its buffer is written out: only then is nothing of it left unsent.
        self.write_blocked = !matches!(poll, Poll::Ready(Ok(())));
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_after(reads: &[&[u8]]) -> [u8; 4] {
        let mut tail = [0u8; 4];
        for read in reads {
            push_tail(&mut tail, read);
        }
        tail
    }

    #[test]
    fn the_tail_is_the_last_four_bytes_whatever_the_read_sizes() {
        let request: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        let n = request.len();
        assert_eq!(&tail_after(&[request]), b"\r\n\r\n");
        assert_eq!(&tail_after(&[&request[..n - 3], &request[n - 3..n - 1], &request[n - 1..]]), b"\r\n\r\n");
        assert_eq!(&tail_after(&request.chunks(1).collect::<Vec<_>>()), b"\r\n\r\n");
        assert_eq!(&tail_after(&[request, b"GET"]), b"\nGET");
        assert_eq!(&tail_after(&[request, b""]), b"\r\n\r\n", "an empty read changes nothing");
    }
}
