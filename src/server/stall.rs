//! The send timeout: a response the client stops accepting is aborted after `limits.send_timeout`.
//!
//! Like nginx's `send_timeout`, "no progress" is measured per write, not over the whole
//! response: a slow client that keeps taking bytes is served, one that takes none for the
//! timeout is cut off and gives its connection slot back. A response can stall in two places:
//!
//! - **The socket** (HTTP/1.1 and HTTP/2): the client does not read at all, the kernel's buffers
//!   fill and every write is pending. [`SendTimeout`] wraps the TCP socket, below TLS so that
//!   every write to the kernel counts, and fails a write pending that long; hyper then drops the
//!   connection, which is the only thing that can help when the socket takes nothing.
//! - **An HTTP/2 stream's flow-control window**: the client reads the socket (an HTTP/2 library
//!   always does) but never lets a stream's window open. The connection is fine and may carry
//!   other streams, so only that stream is reset: [`StreamExecutor`] runs each stream's task
//!   under a watch that the response body reports to ([`poll_frame_watched`]). hyper polls a
//!   body for its next frame only once the previous one has room to go, so a body that handed
//!   out a frame and has not been polled since is waiting on the client.
//!
//! HTTP/3 writes are ours (`quic.rs`), so each one simply gets a deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::Version;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::park::Socket;
use crate::metrics::Stats;

/// A socket whose writes fail once one has been pending for the send timeout.
pub(crate) struct SendTimeout<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write or flush is pending: when the socket must have taken a byte by.
    /// Boxed and dropped once the socket takes bytes again, so an idle connection holds none.
    stall: Option<Pin<Box<Sleep>>>,
    stats: Arc<Stats>,
    /// What the connection speaks, for the metric; known only after sniffing or ALPN.
    version: Version,
}

impl<S> SendTimeout<S> {
    /// Wraps `inner`, counting timeouts in `stats`.
    pub(crate) fn new(inner: S, timeout: Duration, stats: Arc<Stats>) -> Self {
        Self { inner, timeout, stall: None, stats, version: Version::HTTP_11 }
    }

    /// The wrapped socket.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Records the protocol the connection turned out to speak.
    pub(crate) fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// Passes a write's result through, arming the deadline while it is pending and failing it
    /// once the deadline passes.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stall = None;
            return poll;
        }
        let timeout = self.timeout;
        let stall = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.stall = None;
        self.stats.send_timed_out(self.version);
        tracing::debug!(?timeout, "send timeout: the client accepted no bytes; closing the connection");
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout: the client stopped reading")))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendTimeout<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

impl<S: Socket> Socket for SendTimeout<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }
}

/// Where the response body of the HTTP/2 stream being polled reports to.
#[derive(Debug, Default)]
struct Progress {
    /// Since when the body has been waiting for hyper to take its next frame; `None` while the
    /// body is producing one (a disk read, a slow handler), which is not the client's fault.
    waiting_since: Mutex<Option<Instant>>,
}

impl Progress {
    fn set(&self, since: Option<Instant>) {
        *self.waiting_since.lock().expect("progress lock") = since;
    }

    fn waiting_since(&self) -> Option<Instant> {
        *self.waiting_since.lock().expect("progress lock")
    }
}

tokio::task_local! {
    /// The progress of the HTTP/2 stream whose task is being polled; unset elsewhere.
    static PROGRESS: Arc<Progress>;
}

/// Polls a response body for its next frame, telling the HTTP/2 stream's watch (if any) that
/// the body is now waiting on the client once a frame is handed out.
pub(crate) fn poll_frame_watched<T>(poll_frame: impl FnOnce() -> Poll<Option<T>>) -> Poll<Option<T>> {
    let _ = PROGRESS.try_with(|progress| progress.set(None));
    let poll = poll_frame();
    if let Poll::Ready(Some(_)) = poll {
        let _ = PROGRESS.try_with(|progress| progress.set(Some(Instant::now())));
    }
    poll
}

/// hyper's HTTP/2 executor: spawns each stream's task on tokio under a [`Watched`] send timeout.
#[derive(Clone)]
pub(crate) struct StreamExecutor {
    timeout: Duration,
    stats: Arc<Stats>,
}

impl StreamExecutor {
    /// An executor resetting streams that wait `timeout` on the client, counting them in `stats`.
    pub(crate) fn new(timeout: Duration, stats: Arc<Stats>) -> Self {
        Self { timeout, stats }
    }
}

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for StreamExecutor {
    fn execute(&self, task: F) {
        tokio::spawn(Watched {
            task,
            progress: Arc::default(),
            stall: None,
            timeout: self.timeout,
            stats: self.stats.clone(),
        });
    }
}

pin_project! {
    /// An HTTP/2 stream's task, ended (which resets the stream) once its body has waited on the
    /// client for the send timeout.
    struct Watched<F> {
        #[pin]
        task: F,
        progress: Arc<Progress>,
        stall: Option<Pin<Box<Sleep>>>,
        timeout: Duration,
        stats: Arc<Stats>,
    }
}

impl<F: Future<Output = ()>> Future for Watched<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let task = this.task;
        if PROGRESS.sync_scope(this.progress.clone(), || task.poll(cx)).is_ready() {
            return Poll::Ready(());
        }
        let Some(since) = this.progress.waiting_since() else {
            *this.stall = None;
            return Poll::Pending;
        };
        let deadline = since + *this.timeout;
        let stall = this.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if stall.deadline() != deadline {
            stall.as_mut().reset(deadline);
        }
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.stats.send_timed_out(Version::HTTP_2);
        tracing::debug!(timeout = ?this.timeout, "send timeout: an HTTP/2 stream got no window; resetting it");
        // Dropping the task drops hyper's handle on the stream, and h2 resets it (CANCEL).
        Poll::Ready(())
    }
}
