//! One client connection: the socket behind a small trait, and a bounded read buffer that only
//! ever reads with a timeout derived from a deadline.
//!
//! This is the only place that reads or writes socket bytes (the server loop drives it). It knows
//! nothing of HTTP; it does not parse, and it never grows its buffer past the head limit.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connected byte stream the server can time out and shut down from another thread.
pub(crate) trait Transport: Send + Sync + 'static {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_all_bytes(&self, buf: &[u8]) -> io::Result<()>;
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn shutdown(&self, how: Shutdown);
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn write_all_bytes(&self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
    fn shutdown(&self, how: Shutdown) {
        let _ = TcpStream::shutdown(self, how);
    }
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, on)
    }
}

impl Transport for UnixStream {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn write_all_bytes(&self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, t)
    }
    fn shutdown(&self, how: Shutdown) {
        let _ = UnixStream::shutdown(self, how);
    }
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        UnixStream::set_nonblocking(self, on)
    }
}

/// One read of at least a byte into `out`, EINTR retried, errors sorted into [`FillError`].
fn read_retrying(transport: &dyn Transport, out: &mut [u8]) -> Result<usize, FillError> {
    loop {
        match transport.read_some(out) {
            Ok(0) => return Err(FillError::Eof),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(FillError::Timeout)
            }
            Err(_) => return Err(FillError::Io),
        }
    }
}

/// Why a read for more bytes produced none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FillError {
    /// The peer closed its sending side (or the server shut the read side).
    Eof,
    /// The deadline or the per-read timeout passed.
    Timeout,
    /// Any other socket error (reset, ...).
    Io,
    /// The buffer is full of unconsumed bytes.
    Full,
}

/// A connection's socket plus its read buffer (`buf[start..end]` is unconsumed input).
pub(crate) struct ConnIo {
    pub(crate) transport: Arc<dyn Transport>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Per-read cap (the profile's `read_timeout`); deadlines shorten it, never lengthen it.
    read_timeout: Option<Duration>,
    /// What the socket currently has, to skip redundant `setsockopt` calls.
    current_timeout: Option<Duration>,
}

impl ConnIo {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        capacity: usize,
        read_timeout: Option<Duration>,
    ) -> ConnIo {
        ConnIo {
            transport,
            buf: vec![0u8; capacity.max(64)].into_boxed_slice(),
            start: 0,
            end: 0,
            read_timeout,
            current_timeout: None,
        }
    }

    /// Unconsumed buffered input.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes into the buffer, waiting at most until `deadline` (and at most the
    /// per-read timeout). `wait` overrides the per-read timeout (used for the idle wait).
    pub(crate) fn fill(
        &mut self,
        deadline: Option<Instant>,
        wait: Option<Option<Duration>>,
    ) -> Result<usize, FillError> {
        if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(FillError::Full);
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.arm(deadline, wait)?;
        let end = self.end;
        let n = read_retrying(&*self.transport, &mut self.buf[end..])?;
        self.end += n;
        Ok(n)
    }

    /// Reads straight into `out`, bypassing the buffer, with the same timeouts as [`fill`]:
    /// large request bodies then cost one copy instead of two and far fewer, larger reads.
    /// Only when nothing is buffered (buffered bytes come first).
    ///
    /// [`fill`]: ConnIo::fill
    pub(crate) fn read_direct(
        &mut self,
        out: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<usize, FillError> {
        debug_assert!(self.buffered().is_empty());
        self.arm(deadline, None)?;
        read_retrying(&*self.transport, out)
    }

    /// Sets the socket's read timeout for the next read: the per-read cap (or `wait`),
    /// shortened to the deadline.
    fn arm(
        &mut self,
        deadline: Option<Instant>,
        wait: Option<Option<Duration>>,
    ) -> Result<(), FillError> {
        let mut timeout = wait.unwrap_or(self.read_timeout);
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(FillError::Timeout);
            }
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        // A zero timeout means "block forever" to the OS; never pass one.
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        if timeout != self.current_timeout {
            if self.transport.set_read_timeout(timeout).is_err() {
                return Err(FillError::Io);
            }
            self.current_timeout = timeout;
        }
        Ok(())
    }

    pub(crate) fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.transport.write_all_bytes(bytes)
    }

    /// Closes politely after an error answer: stop sending, then read and discard what the
    /// client is still sending for a moment, so our answer is not destroyed by a TCP reset
    /// caused by unread input.
    pub(crate) fn linger_close(mut self, max_bytes: u64, max_time: Duration) {
        self.transport.shutdown(Shutdown::Write);
        let deadline = Instant::now() + max_time;
        let mut discarded = 0u64;
        self.start = 0;
        self.end = 0;
        while discarded < max_bytes {
            match self.fill(Some(deadline), None) {
                Ok(n) => {
                    discarded += n as u64;
                    self.start = 0;
                    self.end = 0;
                }
                Err(_) => break,
            }
        }
        self.transport.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(capacity: usize, read_timeout: Option<Duration>) -> (ConnIo, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        (ConnIo::new(Arc::new(ours), capacity, read_timeout), theirs)
    }

    #[test]
    fn fill_reads_consume_frees_and_eof_is_reported() {
        let (mut io, mut peer) = pair(64, Some(Duration::from_secs(2)));
        peer.write_all(b"hello").unwrap();
        assert_eq!(io.fill(None, None), Ok(5));
        assert_eq!(io.buffered(), b"hello");
        io.consume(2);
        assert_eq!(io.buffered(), b"llo");
        io.consume(10);
        assert_eq!(io.buffered(), b"");
        drop(peer);
        assert_eq!(io.fill(None, None), Err(FillError::Eof));
    }

    #[test]
    fn a_deadline_shortens_the_read_timeout_and_a_past_one_never_reads() {
        let (mut io, _peer) = pair(64, Some(Duration::from_secs(30)));
        let t = Instant::now();
        let deadline = Some(t + Duration::from_millis(150));
        assert_eq!(io.fill(deadline, None), Err(FillError::Timeout));
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(2));
        assert_eq!(io.fill(Some(Instant::now()), None), Err(FillError::Timeout));
    }

    #[test]
    fn a_full_buffer_is_reported_not_grown_and_compacts_when_possible() {
        let (mut io, mut peer) = pair(64, Some(Duration::from_secs(2)));
        peer.write_all(&[b'x'; 100]).unwrap();
        assert_eq!(io.fill(None, None), Ok(64));
        assert_eq!(io.fill(None, None), Err(FillError::Full));
        io.consume(60);
        assert_eq!(io.fill(None, None), Ok(36), "compacted to make room");
        assert_eq!(io.buffered().len(), 40);
    }
}
