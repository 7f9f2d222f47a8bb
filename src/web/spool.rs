//! An upload's bytes on disk while they arrive, read back at the same time by whoever needs
//! them: the object PUT and the thumbnail decoder each follow the writer with their own
//! position, waiting for bytes not yet written. Memory per upload is therefore a few buffers
//! whatever the file's size, and the PUT can start over from the first byte when the transport
//! retries it.
//!
//! The file is unlinked as soon as it is created, so nothing is left on disk when the upload
//! ends, fails or the process dies. A reader can be held back from the last byte until the
//! upload is judged ([`Spool::release`]): the object then does not exist until the checks that
//! need the whole file (content hash, duplicates, markup) have passed, and a refused upload is
//! never stored. [`Spool::fail`] makes every reader fail, which aborts the PUT mid-body.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a reader waits for bytes that do not come before it gives up: longer than any
/// body deadline, so it only ends a reader whose writer vanished without a word.
const STALL: Duration = Duration::from_secs(300);

/// The spool file and how far it has got.
pub(crate) struct Spool {
    file: File,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    written: u64,
    /// All bytes are in.
    complete: bool,
    /// The last byte may be read.
    released: bool,
    /// The upload was abandoned: readers fail.
    failed: bool,
}

impl Spool {
    /// A new, already unlinked, spool file in `dir`.
    pub(crate) fn new(dir: &Path) -> io::Result<Spool> {
        let path = dir.join(format!("ocivision-upload-{}", crate::random::hex::<12>()));
        // New (never an existing file or link), readable by this user only, and gone from the
        // directory before a byte is written.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(Spool {
            file,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends bytes.
    pub(crate) fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let at = self.state().written;
        self.file.write_all_at(bytes, at)?;
        self.state().written += bytes.len() as u64;
        self.changed.notify_all();
        Ok(())
    }

    /// Marks the end of the bytes; readers held back still wait for [`Spool::release`].
    pub(crate) fn complete(&self) {
        self.state().complete = true;
        self.changed.notify_all();
    }

    /// Lets held-back readers read the last byte.
    pub(crate) fn release(&self) {
        self.state().released = true;
        self.changed.notify_all();
    }

    /// Makes every reader fail from now on.
    pub(crate) fn fail(&self) {
        self.state().failed = true;
        self.changed.notify_all();
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.state().written
    }

    /// A reader from the first byte; `hold_last` keeps the last byte back until released.
    pub(crate) fn reader(&self, hold_last: bool) -> SpoolReader<'_> {
        SpoolReader {
            spool: self,
            at: 0,
            hold_last,
        }
    }

    /// Reads at `at` what is already written (never waits), for checks after the upload.
    pub(crate) fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        let written = self.state().written;
        if at >= written {
            return Ok(0);
        }
        let n = buf.len().min((written - at) as usize);
        self.file.read_at(&mut buf[..n], at)
    }
}

impl crate::image_info::Positioned for Spool {
    fn size(&self) -> u64 {
        self.len()
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        Spool::read_at(self, buf, at)
    }
}

/// One follower of a [`Spool`]: `Read` waits for the writer, `Seek` moves within what is
/// written.
pub(crate) struct SpoolReader<'a> {
    spool: &'a Spool,
    at: u64,
    hold_last: bool,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let until = Instant::now() + STALL;
        let mut state = self.spool.state();
        let readable = loop {
            if state.failed {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the upload was abandoned",
                ));
            }
            let held = self.hold_last && !state.released;
            let readable = if held {
                state.written.saturating_sub(1)
            } else {
                state.written
            };
            if readable > self.at {
                break readable;
            }
            if state.complete && !held {
                return Ok(0);
            }
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the upload stalled",
                ));
            };
            state = self
                .spool
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(state);
        let n = buf.len().min((readable - self.at) as usize);
        let n = self.spool.file.read_at(&mut buf[..n], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Seek for SpoolReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        if self.spool.state().failed {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the upload was abandoned",
            ));
        }
        let written = self.spool.len();
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.at.checked_add_signed(d),
            SeekFrom::End(d) => written.checked_add_signed(d),
        };
        match target {
            Some(n) if n <= written => {
                self.at = n;
                Ok(n)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek past what the upload has written",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_follow_the_writer_and_wait_for_the_release() {
        let spool = Spool::new(&std::env::temp_dir()).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        std::thread::scope(|scope| {
            let free = scope.spawn(|| {
                let mut got = Vec::new();
                spool.reader(false).read_to_end(&mut got).unwrap();
                got
            });
            let held = scope.spawn(|| {
                let mut got = Vec::new();
                spool.reader(true).read_to_end(&mut got).unwrap();
                got
            });
            for piece in data.chunks(7_000) {
                spool.append(piece).unwrap();
            }
            spool.complete();
            assert_eq!(free.join().unwrap(), data);
            std::thread::sleep(Duration::from_millis(50));
            assert!(!held.is_finished(), "the last byte is held back");
            spool.release();
            assert_eq!(held.join().unwrap(), data);
        });
        let mut again = spool.reader(false);
        again.seek(SeekFrom::Start(10)).unwrap();
        let mut ten = [0; 10];
        again.read_exact(&mut ten).unwrap();
        assert_eq!(ten, data[10..20]);
        assert!(again.seek(SeekFrom::Start(data.len() as u64 + 1)).is_err());
    }

    #[test]
    fn a_failed_upload_fails_its_readers() {
        let spool = Spool::new(&std::env::temp_dir()).unwrap();
        spool.append(b"partial").unwrap();
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut got = Vec::new();
                spool.reader(false).read_to_end(&mut got)
            });
            std::thread::sleep(Duration::from_millis(20));
            spool.fail();
            let err = reader.join().unwrap().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        });
    }
}
