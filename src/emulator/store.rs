//! The emulator's persistence: one directory of records, each a key, JSON metadata and a body.
//!
//! A record is one file named by the SHA-256 of its key, so any key (object names with `/`,
//! `%`, Unicode, 1024 bytes) is safe on disk; the real key lives inside the file. Each write goes
//! to a temp file in the same directory, is fsynced, renamed over the old file and the directory
//! is fsynced, so a crash leaves either the old or the new record, never a torn one. All access
//! goes through [`Store::lock`], which serialises callers, so a read-check-write sequence under
//! one guard is atomic (what conditional PUTs need). A new `Store` on the same directory sees
//! everything written before.
//!
//! Every record's key and metadata (not its body) are read once when the store opens and kept in
//! memory in key order, as the JSON text they are stored as (a few hundred bytes a record), so
//! metadata lookups touch no file and a listing walks keys from where it starts instead of
//! opening every file. Bodies are read from disk on each `get`.
//!
//! Deliberately not here: body caching, compaction, or sharing one directory between two live
//! `Store` values (the lock and the key index are in memory).
//!
//! Also holds the few helpers both emulated services need: random ids, hex and timestamps.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Marks the start of every record file (and its format version).
const MAGIC: &[u8; 4] = b"EMS1";
/// Record files end with this; temp files start with [`TEMP_PREFIX`].
const RECORD_SUFFIX: &str = ".rec";
const TEMP_PREFIX: &str = ".tmp-";
/// A header larger than this means a damaged file, not a real record.
const MAX_HEADER: u32 = 16 * 1024 * 1024;

/// Key → metadata as JSON text, in key order, and the bytes that takes.
#[derive(Debug, Default)]
struct Index {
    map: BTreeMap<String, Box<[u8]>>,
    /// Keys' and metadata's lengths, summed (what callers bound).
    bytes: usize,
}

impl Index {
    fn insert(&mut self, key: String, meta: Box<[u8]>) {
        self.bytes += key.len() + meta.len();
        if let Some(old) = self.map.insert(key.clone(), meta) {
            self.bytes -= key.len() + old.len();
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= key.len() + old.len();
        }
    }
}

/// A directory of records guarded by one lock.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    index: Mutex<Index>,
}

/// A record's key and metadata, without its body (what listings return).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key as given to [`Locked::put`].
    pub(crate) key: String,
    /// The metadata as given.
    pub(crate) meta: serde_json::Value,
}

/// Exclusive access to a [`Store`] until dropped.
pub(crate) struct Locked<'a> {
    store: &'a Store,
    index: MutexGuard<'a, Index>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    key: String,
    meta: serde_json::Value,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, removes temp files a crash left behind and
    /// reads every record's header.
    pub(crate) fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut index = Index::default();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) {
                // A temp file is only ever renamed into place whole, so a leftover is garbage.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if !name.ends_with(RECORD_SUFFIX) {
                continue;
            }
            let header = read_header(&mut File::open(entry.path())?)?;
            index.insert(header.key, serde_json::to_vec(&header.meta)?.into());
        }
        Ok(Store {
            dir,
            index: Mutex::new(index),
        })
    }

    /// How many records there are, and the bytes their keys and metadata hold in memory.
    pub(crate) fn footprint(&self) -> (usize, usize) {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        (index.map.len(), index.bytes)
    }

    /// The store's directory (a bucket keeps its own description beside the records).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits for exclusive access. A panic in another holder does not block the store forever:
    /// every write is atomic on disk and the index changes only after it, so the data behind a
    /// poisoned lock is still whole.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            store: self,
            index: self.index.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    fn path_for(&self, key: &str) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        self.dir
            .join(format!("{}{RECORD_SUFFIX}", hex_lower(digest.as_ref())))
    }
}

impl Locked<'_> {
    /// The metadata and body stored under `key`.
    pub(crate) fn get(&self, key: &str) -> Result<Option<(serde_json::Value, Vec<u8>)>> {
        let Some(meta) = self.meta(key)? else {
            return Ok(None);
        };
        let Some(mut file) = open_existing(&self.store.path_for(key))? else {
            return Ok(None);
        };
        let header = read_header(&mut file)?;
        if header.key != key {
            // Two keys with one SHA-256 would be news; treat it as "not this record".
            return Ok(None);
        }
        let mut body = Vec::new();
        file.read_to_end(&mut body)?;
        Ok(Some((meta, body)))
    }

    /// Only the metadata stored under `key` (no file is read).
    pub(crate) fn meta(&self, key: &str) -> Result<Option<serde_json::Value>> {
        Ok(self
            .index
            .map
            .get(key)
            .map(|text| serde_json::from_slice(text))
            .transpose()?)
    }

    /// Stores `meta` and `body` under `key`, replacing any record there, crash-safely.
    pub(crate) fn put(&mut self, key: &str, meta: &serde_json::Value, body: &[u8]) -> Result<()> {
        let header = serde_json::to_vec(&Header {
            key: key.to_string(),
            meta: meta.clone(),
        })?;
        let header_len = u32::try_from(header.len())
            .ok()
            .filter(|&n| n <= MAX_HEADER)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record header too big"))?;
        let temp = self.store.dir.join(format!(
            "{TEMP_PREFIX}{}",
            hex_lower(&crate::random::bytes::<8>())
        ));
        let written = (|| -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(MAGIC)?;
            file.write_all(&header_len.to_le_bytes())?;
            file.write_all(&header)?;
            file.write_all(body)?;
            file.sync_all()?;
            fs::rename(&temp, self.store.path_for(key))?;
            sync_dir(&self.store.dir)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written?;
        self.index
            .insert(key.to_string(), serde_json::to_vec(meta)?.into());
        Ok(())
    }

    /// The bytes the index holds for all records' keys and metadata (see [`Store::footprint`]);
    /// a caller bounding it checks [`Locked::index_growth`] before [`Locked::put`].
    pub(crate) fn index_bytes(&self) -> usize {
        self.index.bytes
    }

    /// How many bytes the index would grow by if `key` were stored with `meta` (0 when it
    /// would shrink).
    pub(crate) fn index_growth(&self, key: &str, meta: &serde_json::Value) -> Result<usize> {
        let now = self.index.map.get(key).map_or(0, |m| key.len() + m.len());
        Ok((key.len() + serde_json::to_vec(meta)?.len()).saturating_sub(now))
    }

    /// Removes the record under `key`; `false` when there was none.
    pub(crate) fn delete(&mut self, key: &str) -> Result<bool> {
        if !self.index.map.contains_key(key) {
            return Ok(false);
        }
        fs::remove_file(self.store.path_for(key))?;
        sync_dir(&self.store.dir)?;
        self.index.remove(key);
        Ok(true)
    }

    /// Every record's key and metadata, in key order.
    pub(crate) fn list(&self) -> Result<Vec<Entry>> {
        self.entries_from("")
            .map(|entry| {
                Ok(Entry {
                    key: entry.key.to_string(),
                    meta: entry.meta()?,
                })
            })
            .collect()
    }

    /// Records in key order (bytewise, as UTF-8 sorts) from the first key ≥ `from`, their
    /// metadata parsed only when asked for.
    pub(crate) fn entries_from<'s>(&'s self, from: &str) -> impl Iterator<Item = EntryRef<'s>> {
        self.index
            .map
            .range::<str, _>((Bound::Included(from), Bound::Unbounded))
            .map(|(key, meta)| EntryRef { key, meta })
    }
}

/// A record's key and its metadata as stored, borrowed from the index.
pub(crate) struct EntryRef<'s> {
    /// The key.
    pub(crate) key: &'s str,
    meta: &'s [u8],
}

impl EntryRef<'_> {
    /// The metadata, parsed as `T`.
    pub(crate) fn meta<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(self.meta)?)
    }
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_header(file: &mut File) -> Result<Header> {
    let damaged = || io::Error::new(io::ErrorKind::InvalidData, "damaged store record");
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(|_| damaged())?;
    if &prefix[..4] != MAGIC {
        return Err(damaged().into());
    }
    let len = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    if len > MAX_HEADER {
        return Err(damaged().into());
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(|_| damaged())?;
    Ok(serde_json::from_slice(&header)?)
}

/// Makes a rename or unlink in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Lower-case hex.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Upper-case hex (SODA ids and etags).
pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Microseconds since the Unix epoch (how records keep times).
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The instant `micros` after the epoch.
pub(crate) fn system_time(micros: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(micros)
}

/// RFC 3339 UTC of a record time, e.g. `2025-03-01T10:15:30.123Z`.
pub(crate) fn rfc3339(micros: u64, precision: crate::timefmt::Precision) -> String {
    crate::timefmt::format(system_time(micros), precision)
}

/// A unique empty directory for a test; the caller removes it.
#[cfg(test)]
pub(crate) fn test_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ocivision-{tag}-{}-{}",
        std::process::id(),
        hex_lower(&crate::random::bytes::<6>())
    ));
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn put_get_list_delete_and_reopen() {
        let dir = test_dir("store");
        {
            let store = Store::open(&dir).unwrap();
            let mut locked = store.lock();
            for key in ["a/b c", "caf\u{e9} %2F", &"x".repeat(1024)] {
                locked.put(key, &json!({"k": key}), key.as_bytes()).unwrap();
            }
            let (meta, body) = locked.get("a/b c").unwrap().unwrap();
            assert_eq!((meta, body), (json!({"k": "a/b c"}), b"a/b c".to_vec()));
            assert_eq!(locked.get("missing").unwrap(), None);
            locked.put("a/b c", &json!(2), b"new").unwrap();
            assert!(locked.delete("caf\u{e9} %2F").unwrap());
            assert!(!locked.delete("caf\u{e9} %2F").unwrap());
        }
        // A temp file from a crashed write disappears on open and never shows in listings.
        fs::write(dir.join(".tmp-deadbeef"), b"junk").unwrap();
        let store = Store::open(&dir).unwrap();
        assert!(!dir.join(".tmp-deadbeef").exists());
        let locked = store.lock();
        let mut keys: Vec<String> = locked.list().unwrap().into_iter().map(|e| e.key).collect();
        keys.sort();
        assert_eq!(keys, vec!["a/b c".to_string(), "x".repeat(1024)]);
        assert_eq!(locked.get("a/b c").unwrap().unwrap().1, b"new");
        assert_eq!(locked.meta("a/b c").unwrap(), Some(json!(2)));
        drop(locked);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_index_counts_its_bytes_through_puts_replacements_deletes_and_reopening() {
        let dir = test_dir("store-bytes");
        let store = Store::open(&dir).unwrap();
        let meta = serde_json::json!({"n": 1});
        let cost = |key: &str, meta: &serde_json::Value| {
            key.len() + serde_json::to_vec(meta).unwrap().len()
        };
        {
            let mut locked = store.lock();
            assert_eq!(locked.index_growth("a", &meta).unwrap(), cost("a", &meta));
            locked.put("a", &meta, b"body").unwrap();
            locked.put("bb", &meta, b"").unwrap();
            let bigger = serde_json::json!({"n": 1, "more": "text"});
            let growth = locked.index_growth("a", &bigger).unwrap();
            assert_eq!(growth, cost("a", &bigger) - cost("a", &meta));
            locked.put("a", &bigger, b"").unwrap();
            assert_eq!(locked.index_growth("a", &meta).unwrap(), 0, "shrinking");
            assert_eq!(locked.index_bytes(), cost("a", &bigger) + cost("bb", &meta));
            assert!(locked.delete("bb").unwrap());
            assert_eq!(locked.index_bytes(), cost("a", &bigger));
        }
        let (records, bytes) = Store::open(&dir).unwrap().footprint();
        assert_eq!(
            (records, bytes),
            store.footprint(),
            "counted again on opening"
        );
        assert_eq!(records, 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn concurrent_writers_are_serialised() {
        let dir = test_dir("store-threads");
        let store = Arc::new(Store::open(&dir).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let mut locked = store.lock();
                        let n = locked.meta("counter").unwrap().and_then(|v| v.as_u64());
                        let next = n.unwrap_or(0) + 1;
                        locked.put("counter", &json!(next), b"").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.lock().meta("counter").unwrap(), Some(json!(160)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn record_times_format_at_both_precisions() {
        use crate::timefmt::Precision;
        assert_eq!(hex_upper(&[0xab, 1]), "AB01");
        assert_eq!(
            rfc3339(951_782_400_123_456, Precision::Millis),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            rfc3339(951_782_400_123_456, Precision::Micros),
            "2000-02-29T00:00:00.123456Z"
        );
    }
}
