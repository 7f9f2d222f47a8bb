//! One client connection: the socket behind a small trait, and a bounded read buffer that only
//! ever reads with a timeout derived from a deadline.
//!
//! Sockets live in non-blocking mode (the readiness loop owns them between requests). A worker
//! that serves a request wraps the socket in a [`ConnIo`] with the worker's own buffer; the first
//! read or write that would block switches the socket to blocking mode with timeouts, and
//! [`ConnIo::into_parts`] switches it back before the connection returns to the loop. So a
//! request whose bytes are all there costs no mode changes at all. This module knows nothing of
//! HTTP; it does not parse, and it never grows its buffer.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connected byte stream the server can time out and shut down from another thread.
pub(crate) trait ByteStream: Send + Sync + 'static {
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_some(&self, buf: &[u8]) -> io::Result<usize>;
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn shutdown(&self, how: Shutdown);
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
    fn raw_fd(&self) -> RawFd;
}

/// Both socket kinds implement [`ByteStream`] the same way, through their `&Self` I/O.
macro_rules! byte_stream {
    ($stream:ty) => {
        impl ByteStream for $stream {
            fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }
            fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
                (&*self).write(buf)
            }
            fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
                <$stream>::set_read_timeout(self, t)
            }
            fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
                <$stream>::set_write_timeout(self, t)
            }
            fn shutdown(&self, how: Shutdown) {
                let _ = <$stream>::shutdown(self, how);
            }
            fn set_nonblocking(&self, on: bool) -> io::Result<()> {
                <$stream>::set_nonblocking(self, on)
            }
            fn raw_fd(&self) -> RawFd {
                self.as_raw_fd()
            }
        }
    };
}

byte_stream!(TcpStream);
byte_stream!(UnixStream);

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

/// A connection's socket plus a worker's read buffer (`buf[start..end]` is unconsumed input).
pub(crate) struct ConnIo {
    pub(crate) transport: Arc<dyn ByteStream>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Per-read cap (the profile's `read_timeout`); deadlines shorten it, never lengthen it.
    read_timeout: Option<Duration>,
    /// What the socket currently has, to skip redundant `setsockopt` calls.
    current_timeout: Option<Duration>,
    /// True once the socket was switched to blocking mode (see the module docs).
    blocking: Cell<bool>,
}

impl ConnIo {
    /// Wraps a non-blocking socket, with `buf` as the read buffer holding `initial` (bytes the
    /// loop already read; at most `buf.len()` of them are kept).
    pub(crate) fn new(
        transport: Arc<dyn ByteStream>,
        mut buf: Box<[u8]>,
        initial: &[u8],
        read_timeout: Option<Duration>,
    ) -> ConnIo {
        let end = initial.len().min(buf.len());
        buf[..end].copy_from_slice(&initial[..end]);
        ConnIo {
            transport,
            buf,
            start: 0,
            end,
            read_timeout,
            current_timeout: None,
            blocking: Cell::new(false),
        }
    }

    /// Gives the socket back (non-blocking again), the buffer, and the unconsumed bytes.
    pub(crate) fn into_parts(self) -> (Arc<dyn ByteStream>, Box<[u8]>, Vec<u8>) {
        if self.blocking.get() {
            let _ = self.transport.set_nonblocking(true);
        }
        let rest = self.buf[self.start..self.end].to_vec();
        (self.transport, self.buf, rest)
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
    /// per-read timeout).
    pub(crate) fn fill(&mut self, deadline: Option<Instant>) -> Result<usize, FillError> {
        if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(FillError::Full);
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let end = self.end;
        let n = self.read_into(BufSlot::Buffer(end), deadline)?;
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
        self.read_into(BufSlot::Outside(out), deadline)
    }

    /// One read of at least a byte: at once if the bytes are there, else in blocking mode
    /// under the per-read timeout shortened to the deadline. EINTR is retried.
    fn read_into(
        &mut self,
        mut to: BufSlot<'_>,
        deadline: Option<Instant>,
    ) -> Result<usize, FillError> {
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(FillError::Timeout);
        }
        loop {
            if self.blocking.get() {
                self.arm(deadline)?;
            }
            let out: &mut [u8] = match &mut to {
                BufSlot::Buffer(from) => &mut self.buf[*from..],
                BufSlot::Outside(out) => out,
            };
            match self.transport.read_some(out) {
                Ok(0) => return Err(FillError::Eof),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.blocking.get() => {
                    self.go_blocking()?;
                }
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

    fn go_blocking(&self) -> Result<(), FillError> {
        self.transport
            .set_nonblocking(false)
            .map_err(|_| FillError::Io)?;
        self.blocking.set(true);
        Ok(())
    }

    /// Sets the socket's read timeout for the next read: the per-read cap, shortened to the
    /// deadline.
    fn arm(&mut self, deadline: Option<Instant>) -> Result<(), FillError> {
        let mut timeout = self.read_timeout;
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

    /// Writes all of `bytes`: at once while the socket takes them, then in blocking mode under
    /// the write timeout set when the connection was accepted.
    pub(crate) fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.transport.write_some(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.blocking.get() => {
                    self.go_blocking()
                        .map_err(|_| io::Error::other("cannot switch the socket to blocking"))?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Where [`ConnIo::read_into`] puts bytes: the buffer from an offset, or the caller's slice.
enum BufSlot<'a> {
    Buffer(usize),
    Outside(&'a mut [u8]),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(capacity: usize, read_timeout: Option<Duration>) -> (ConnIo, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let buf = vec![0u8; capacity].into_boxed_slice();
        (ConnIo::new(Arc::new(ours), buf, b"", read_timeout), theirs)
    }

    #[test]
    fn fill_reads_consume_frees_and_eof_is_reported() {
        let (mut io, mut peer) = pair(64, Some(Duration::from_secs(2)));
        peer.write_all(b"hello").unwrap();
        assert_eq!(io.fill(None), Ok(5));
        assert!(
            !io.blocking.get(),
            "bytes were there: no switch to blocking"
        );
        assert_eq!(io.buffered(), b"hello");
        io.consume(2);
        assert_eq!(io.buffered(), b"llo");
        io.consume(10);
        assert_eq!(io.buffered(), b"");
        drop(peer);
        assert_eq!(io.fill(None), Err(FillError::Eof));
    }

    #[test]
    fn a_deadline_shortens_the_read_timeout_and_a_past_one_never_reads() {
        let (mut io, _peer) = pair(64, Some(Duration::from_secs(30)));
        let t = Instant::now();
        let deadline = Some(t + Duration::from_millis(150));
        assert_eq!(io.fill(deadline), Err(FillError::Timeout));
        assert!(io.blocking.get(), "waited in blocking mode");
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(2));
        assert_eq!(io.fill(Some(Instant::now())), Err(FillError::Timeout));
    }

    #[test]
    fn a_full_buffer_is_reported_not_grown_and_compacts_when_possible() {
        let (mut io, mut peer) = pair(64, Some(Duration::from_secs(2)));
        peer.write_all(&[b'x'; 100]).unwrap();
        assert_eq!(io.fill(None), Ok(64));
        assert_eq!(io.fill(None), Err(FillError::Full));
        io.consume(60);
        assert_eq!(io.fill(None), Ok(36), "compacted to make room");
        assert_eq!(io.buffered().len(), 40);
    }

    #[test]
    fn initial_bytes_come_first_and_parts_hand_back_the_rest_non_blocking() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let buf = vec![0u8; 16].into_boxed_slice();
        let mut io = ConnIo::new(Arc::new(ours), buf, b"abc", Some(Duration::from_secs(2)));
        assert_eq!(io.buffered(), b"abc");
        io.consume(1);
        let t = Instant::now();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            peer.write_all(b"de").unwrap();
            peer
        });
        assert_eq!(io.fill(Some(t + Duration::from_secs(5))), Ok(2));
        assert!(io.blocking.get());
        let mut peer = writer.join().unwrap();
        let (transport, buf, rest) = io.into_parts();
        assert_eq!((buf.len(), rest.as_slice()), (16, &b"bcde"[..]));
        let mut one = [0u8; 1];
        let err = transport.read_some(&mut one).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "non-blocking again");
        peer.write_all(b"f").unwrap();
    }
}
