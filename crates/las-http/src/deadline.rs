//! A write deadline on a connection: a client that stops reading its responses loses its
//! connection (and its slot under `--max-connections`) after a bounded time.
//!
//! Hyper has a deadline for reading request headers (which also bounds an idle keep-alive
//! connection, since waiting for the next request is reading headers) but none for
//! writing. A client that pipelines requests and never reads fills the socket buffers;
//! hyper then waits for ever in `poll_write` and stops reading, so no read deadline fires.
//!
//! [`WriteDeadline`] wraps the accepted socket. When a write would block, a timer starts;
//! it stops only when hyper's write buffer has been handed to the kernel completely (hyper
//! then calls `poll_flush`: hyper's `Buffered::poll_flush` writes until its buffer is empty
//! before flushing the transport). A partial write does not restart it, so a client that
//! reads a trickle cannot hold the connection either: each batch of responses (at most
//! hyper's `max_buf_size`) must reach the kernel within the deadline once it blocks. When
//! the timer fires, the write fails with `TimedOut` and hyper closes the connection.
//!
//! Hand-written (about 60 lines) because no maintained crate does exactly this for
//! hyper 1 servers: `tokio-io-timeout` restarts its timer on every partial write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A transport whose writes fail with `TimedOut` once a write has been blocked for
/// `limit` without the pending responses reaching the kernel.
#[derive(Debug)]
pub(crate) struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    /// Running while a write is blocked (from the first `Pending` to the next flush).
    timer: Option<Pin<Box<Sleep>>>,
    /// Counts connections closed by this deadline.
    fired: Counter,
}

impl<T> WriteDeadline<T> {
    pub(crate) fn new(inner: T, limit: Duration, fired: Counter) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            fired,
        }
    }

    /// Applies the deadline to the outcome of a write.
    fn check<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if r.is_ready() {
            return r;
        }
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        if timer.as_mut().poll(cx).is_ready() {
            self.timer = None;
            self.fired.inc();
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client did not read its responses within the write timeout ({} s)",
                    limit.as_secs()
                ),
            )));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        if r.is_ready() {
            // Everything hyper had buffered is in the kernel: the write is no longer blocked.
            this.timer = None;
            r
        } else {
            this.check(cx, r)
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.check(cx, r)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_blocked_write_fails_after_the_limit_and_progress_does_not_restart_it() {
        // A pipe with 64 bytes of buffer stands in for the socket buffers.
        let (a, mut b) = tokio::io::duplex(64);
        let fired = Counter::default();
        let mut w = WriteDeadline::new(a, Duration::from_secs(10), fired.clone());
        w.write_all(&[1; 64]).await.unwrap();
        w.flush().await.unwrap();
        // Blocked; the reader takes 16 bytes every 4 s: progress, but not the whole batch.
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 16];
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                got += b.read(&mut buf).await.unwrap();
            }
            (b, got)
        });
        let start = Instant::now();
        let e = w.write_all(&[2; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(11),
            "{took:?}"
        );
        assert_eq!(fired.get(), 1);
        drop(reader);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_keeps_up_is_never_cut() {
        let (a, mut b) = tokio::io::duplex(64);
        let fired = Counter::default();
        let mut w = WriteDeadline::new(a, Duration::from_secs(10), fired.clone());
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            b.read_to_end(&mut sink).await.unwrap();
            sink.len()
        });
        // 60 batches, each blocked for a while but drained within the limit: 2 minutes.
        for _ in 0..60 {
            w.write_all(&[3; 256]).await.unwrap();
            w.flush().await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        w.shutdown().await.unwrap();
        drop(w);
        assert_eq!(reader.await.unwrap(), 60 * 256);
        assert_eq!(fired.get(), 0);
    }
}
