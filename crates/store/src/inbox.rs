//! The inbox: a durable, append-only file beside the database
//! (`<db>-inbox`) holding the groups of events the service has
//! acknowledged but not yet stored in the database.
//!
//! The service answers a single-event POST once its group is appended
//! here and flushed (one small sequential write and an `fdatasync`),
//! and stores the groups in the database behind, many at a time, which
//! costs the database writer a fraction of a group commit per event. Each
//! group has a sequence number; the database records, in the same
//! transaction as the events, the last group it holds
//! ([`crate::Store::inbox_applied`]). Opening the database
//! ([`crate::Store::open`]) stores every group still in the file past that
//! number, so an acknowledged event survives a crash of the service.
//! Storing a group twice changes nothing (events are keyed by their id).
//!
//! One process at a time owns the file (an exclusive lock on it): the
//! service for as long as it runs. A command that opens the database while
//! the service owns the inbox leaves it to the service.
//!
//! Record layout (little-endian): payload length `u32`, CRC-32 of the
//! payload `u32`, payload: group sequence `u64`, the group's "now" `i64`
//! (nanoseconds since the epoch), event count `u32`, then per event its id,
//! contact id, type (each a `u32` length and UTF-8 bytes), time `i64`,
//! property count `u32` and the properties' names and values. A record
//! cut short or failing its checksum ends the file: it was being written
//! when the process stopped, so it was never acknowledged, and it is cut
//! off when the file is next owned. So do the zeros the owner writes ahead
//! of its records ([`PREALLOC_BYTES`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use leadscore_batch::rows::EventRow;
use leadscore_core::Timestamp;

use crate::error::{Result, StoreError};

/// Zeros written ahead of the records at a time, in bytes. Appending into
/// space already written makes each flush a data flush only (no file size
/// or block allocation to record), which is shorter and steadier beside the
/// database's own writes; readers stop at the zeros.
pub const PREALLOC_BYTES: u64 = 16 << 20;

/// Largest record the inbox writes and reads back, in bytes. The service
/// keeps its groups far below it (`MAX_GROUP_BYTES` of the server, plus one
/// request of at most 32 MiB); [`Inbox::append`] refuses a larger one
/// rather than acknowledge what could not be read back.
pub const MAX_RECORD_BYTES: u32 = 512 << 20;

/// One acknowledged group of events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxGroup {
    /// The group's sequence number (1, 2, ...; never reused).
    pub seq: u64,
    /// The time the group was stored at (decay and windows are brought up
    /// to it before its events are applied).
    pub now: Timestamp,
    /// The events, in the order they were acknowledged.
    pub rows: Vec<EventRow>,
}

/// The inbox file of one database, owned (locked) by this process.
#[derive(Debug)]
pub struct Inbox {
    file: File,
    path: PathBuf,
    /// Bytes of whole records in the file.
    len: u64,
    /// Bytes of the file (records, then zeros written ahead).
    allocated: u64,
    /// The sequence number the next group gets.
    next_seq: u64,
}

/// The inbox path of the database at `db`.
pub fn path_for(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-inbox");
    PathBuf::from(s)
}

impl Inbox {
    /// Opens (creating it) and locks the inbox of the database at `db`,
    /// reads the groups it holds, and cuts off a torn last record. New
    /// groups are numbered after both the file's last and `applied` (the
    /// last group the database holds). `Ok(None)`: another process owns
    /// the inbox.
    pub fn open(db: &Path, applied: u64) -> Result<Option<(Inbox, Vec<InboxGroup>)>> {
        let path = path_for(db);
        let io = io_error(&path);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (groups, whole) = decode_all(&bytes);
        if (whole as u64) < bytes.len() as u64 {
            file.set_len(whole as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let last = groups.last().map_or(0, |g| g.seq);
        Ok(Some((
            Inbox {
                file,
                path,
                len: whole as u64,
                allocated: whole as u64,
                next_seq: last.max(applied) + 1,
            },
            groups,
        )))
    }

    /// Appends one group and flushes it to the disk; returns its sequence
    /// number. When this returns, the group survives a crash.
    pub fn append(&mut self, now: Timestamp, rows: &[EventRow]) -> Result<u64> {
        let seq = self.next_seq;
        check_size(rows, MAX_RECORD_BYTES as usize)?;
        let record = encode(seq, now, rows);
        let end = self.len + record.len() as u64;
        if end > self.allocated {
            self.preallocate(end + PREALLOC_BYTES)?;
        }
        let io = io_error(&self.path);
        self.file.seek(SeekFrom::Start(self.len)).map_err(io)?;
        self.file.write_all(&record).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.len = end;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Writes zeros from the end of the file to `to` bytes, flushed.
    fn preallocate(&mut self, to: u64) -> Result<()> {
        let io = io_error(&self.path);
        self.file
            .seek(SeekFrom::Start(self.allocated))
            .map_err(io)?;
        let zeros = vec![0u8; 1 << 20];
        let mut at = self.allocated;
        while at < to {
            let n = (to - at).min(zeros.len() as u64) as usize;
            self.file.write_all(&zeros[..n]).map_err(io)?;
            at += n as u64;
        }
        self.file.sync_data().map_err(io)?;
        self.allocated = to;
        Ok(())
    }

    /// Bytes of records in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empties the file (call it only when the database holds every group
    /// appended: they are gone from here). Numbering goes on.
    pub fn clear(&mut self) -> Result<()> {
        let io = io_error(&self.path);
        self.file.set_len(0).map_err(io)?;
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        self.len = 0;
        self.allocated = 0;
        Ok(())
    }

    /// Replaces the file's records by `keep` (the groups the database does
    /// not hold yet, in order), so the file does not grow while groups keep
    /// coming. The new file is written beside, flushed and renamed over
    /// the old one, so a crash leaves one or the other whole.
    pub fn rewrite<'a>(&mut self, keep: impl IntoIterator<Item = &'a InboxGroup>) -> Result<()> {
        let tmp = {
            let mut s = self.path.as_os_str().to_owned();
            s.push(".new");
            PathBuf::from(s)
        };
        let io = io_error(&tmp);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io)?;
        file.try_lock().map_err(|e| {
            io(match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => {
                    std::io::Error::other("the new inbox file is locked by another process")
                }
            })
        })?;
        let mut len = 0u64;
        for g in keep {
            let record = encode(g.seq, g.now, &g.rows);
            file.write_all(&record).map_err(io)?;
            len += record.len() as u64;
        }
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // The rename is durable once the directory is flushed.
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        self.file = file;
        self.len = len;
        self.allocated = len;
        Ok(())
    }
}

/// Turns an I/O error on the file at `path` into a store error naming it.
fn io_error(path: &Path) -> impl Fn(std::io::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One record's bytes.
/// Refuses a group whose record would take more than `limit` bytes.
fn check_size(rows: &[EventRow], limit: usize) -> Result<()> {
    // 28 bytes of header beside the events: length, checksum, sequence
    // number, time, count.
    let bytes = 28 + record_bytes(rows);
    if bytes > limit {
        return Err(StoreError::GroupTooLarge {
            events: rows.len(),
            bytes,
            limit,
        });
    }
    Ok(())
}

/// Bytes the events take in an inbox record (without the record's own 28
/// bytes of length, checksum, sequence number, time and count): what the
/// service counts to keep its groups small.
pub fn record_bytes(rows: &[EventRow]) -> usize {
    rows.iter()
        .map(|r| {
            // Three strings with their lengths, the time, the property count.
            let fixed = 3 * 4 + 8 + 4 + r.id.len() + r.contact_id.len() + r.event_type.len();
            let properties: usize = r
                .properties
                .iter()
                .map(|(k, v)| 8 + k.len() + v.len())
                .sum();
            fixed + properties
        })
        .sum()
}

fn encode(seq: u64, now: Timestamp, rows: &[EventRow]) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + record_bytes(rows));
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&now.0.to_le_bytes());
    p.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    let put = |p: &mut Vec<u8>, s: &str| {
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
    };
    for r in rows {
        put(&mut p, &r.id);
        put(&mut p, &r.contact_id);
        put(&mut p, &r.event_type);
        p.extend_from_slice(&r.at.0.to_le_bytes());
        p.extend_from_slice(&(r.properties.len() as u32).to_le_bytes());
        for (k, v) in &r.properties {
            put(&mut p, k);
            put(&mut p, v);
        }
    }
    let mut out = Vec::with_capacity(8 + p.len());
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&p).to_le_bytes());
    out.extend_from_slice(&p);
    out
}

/// The whole records at the start of `bytes`, and how many bytes they
/// take (the rest is a torn record, or nothing).
fn decode_all(bytes: &[u8]) -> (Vec<InboxGroup>, usize) {
    let mut groups = Vec::new();
    let mut at = 0;
    while let Some((group, used)) = decode_one(&bytes[at..]) {
        groups.push(group);
        at += used;
    }
    (groups, at)
}

/// The record at the start of `bytes` and its length, if it is whole and
/// its checksum holds.
fn decode_one(bytes: &[u8]) -> Option<(InboxGroup, usize)> {
    let mut r = Reader(bytes);
    let len = r.u32()?;
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let crc = r.u32()?;
    let payload = r.take(len as usize)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let mut p = Reader(payload);
    let seq = p.u64()?;
    let now = Timestamp(p.u64()? as i64);
    let n = p.u32()? as usize;
    // Each event takes at least 24 bytes: a count past that is damage.
    let mut rows = Vec::with_capacity(n.min(payload.len() / 24));
    for _ in 0..n {
        let id = p.str()?;
        let contact_id = p.str()?;
        let event_type = p.str()?;
        let at = Timestamp(p.u64()? as i64);
        let np = p.u32()? as usize;
        let mut properties = Vec::with_capacity(np.min(payload.len() / 8));
        for _ in 0..np {
            properties.push((p.str()?, p.str()?));
        }
        rows.push(EventRow {
            id,
            contact_id,
            event_type,
            at,
            properties,
        });
    }
    if !p.0.is_empty() {
        return None;
    }
    Some((InboxGroup { seq, now, rows }, 8 + len as usize))
}

/// Reads little-endian numbers and strings off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(id: &str, contact: &str, props: &[(&str, &str)]) -> EventRow {
        EventRow {
            id: id.into(),
            contact_id: contact.into(),
            event_type: "page_view".into(),
            at: Timestamp(1_700_000_000_000_000_000),
            properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_record_takes_what_record_bytes_counts() {
        for rows in [
            vec![],
            vec![row("e1", "c1", &[])],
            vec![
                row("e1", "c1", &[("url", "/pricing"), ("é", "ü")]),
                row("e2", "c22", &[]),
            ],
        ] {
            assert_eq!(
                encode(7, Timestamp(1), &rows).len(),
                28 + record_bytes(&rows)
            );
            let exact = 28 + record_bytes(&rows);
            assert!(check_size(&rows, exact).is_ok());
            assert!(matches!(
                check_size(&rows, exact - 1),
                Err(StoreError::GroupTooLarge { bytes, .. }) if bytes == exact
            ));
        }
    }

    #[test]
    fn groups_read_back_in_order_and_numbering_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let (mut inbox, groups) = Inbox::open(&db, 0).unwrap().unwrap();
        assert!(groups.is_empty());
        let a = vec![row("e1", "c1", &[("url", "/pricing")])];
        let b = vec![row("e2", "c2", &[]), row("e3", "c1", &[("é", "ü")])];
        assert_eq!(inbox.append(Timestamp(5), &a).unwrap(), 1);
        assert_eq!(inbox.append(Timestamp(6), &b).unwrap(), 2);
        drop(inbox);
        let (mut inbox, groups) = Inbox::open(&db, 0).unwrap().unwrap();
        assert_eq!(
            groups,
            vec![
                InboxGroup {
                    seq: 1,
                    now: Timestamp(5),
                    rows: a
                },
                InboxGroup {
                    seq: 2,
                    now: Timestamp(6),
                    rows: b
                }
            ]
        );
        inbox.clear().unwrap();
        assert!(inbox.is_empty());
        assert_eq!(inbox.append(Timestamp(7), &[]).unwrap(), 3);
        drop(inbox);
        // The database already holds group 9: numbering starts after it.
        let (mut inbox, groups) = Inbox::open(&db, 9).unwrap().unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(inbox.append(Timestamp(8), &[]).unwrap(), 10);
    }

    #[test]
    fn a_torn_last_record_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let (mut inbox, _) = Inbox::open(&db, 0).unwrap().unwrap();
        inbox.append(Timestamp(1), &[row("e1", "c1", &[])]).unwrap();
        let whole = inbox.len();
        inbox.append(Timestamp(2), &[row("e2", "c1", &[])]).unwrap();
        let end = inbox.len() as usize;
        drop(inbox);
        let path = path_for(&db);
        let bytes = std::fs::read(&path).unwrap();
        // The zeros written ahead are no record.
        assert!(bytes.len() > end && bytes[end..].iter().all(|&b| b == 0));
        let bytes = bytes[..end].to_vec();
        // Every cut inside the second record, and a flipped byte in it.
        for cut in whole as usize..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let (inbox, groups) = Inbox::open(&db, 0).unwrap().unwrap();
            assert_eq!(groups.len(), 1, "cut at {cut}");
            assert_eq!(inbox.len(), whole);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        }
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let (_, groups) = Inbox::open(&db, 0).unwrap().unwrap();
        assert_eq!(groups.len(), 1);
    }

    #[test]
    fn a_second_owner_is_refused_while_the_first_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let (first, _) = Inbox::open(&db, 0).unwrap().unwrap();
        assert!(Inbox::open(&db, 0).unwrap().is_none());
        drop(first);
        assert!(Inbox::open(&db, 0).unwrap().is_some());
    }

    #[test]
    fn a_rewrite_keeps_only_the_groups_given() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let (mut inbox, _) = Inbox::open(&db, 0).unwrap().unwrap();
        for i in 0..5 {
            inbox
                .append(Timestamp(i), &[row(&format!("e{i}"), "c", &[])])
                .unwrap();
        }
        let keep = vec![InboxGroup {
            seq: 5,
            now: Timestamp(4),
            rows: vec![row("e4", "c", &[])],
        }];
        inbox.rewrite(&keep).unwrap();
        assert_eq!(inbox.append(Timestamp(9), &[]).unwrap(), 6);
        drop(inbox);
        let (_, groups) = Inbox::open(&db, 0).unwrap().unwrap();
        assert_eq!(groups.iter().map(|g| g.seq).collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(groups[0], keep[0]);
    }

    proptest! {
        /// Any group reads back as written, and garbage after whole
        /// records never yields a group.
        #[test]
        fn records_round_trip(
            groups in proptest::collection::vec(
                (any::<i64>(), proptest::collection::vec(
                    ("\\PC{0,12}", "\\PC{0,12}", "\\PC{0,8}", any::<i64>(),
                     proptest::collection::vec(("\\PC{0,6}", "\\PC{0,6}"), 0..3)),
                    0..4)),
                0..4),
            tail in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut bytes = Vec::new();
            let mut want = Vec::new();
            for (i, (now, rows)) in groups.into_iter().enumerate() {
                let rows: Vec<EventRow> = rows
                    .into_iter()
                    .map(|(id, contact_id, event_type, at, properties)| EventRow {
                        id, contact_id, event_type, at: Timestamp(at), properties,
                    })
                    .collect();
                bytes.extend(encode(i as u64 + 1, Timestamp(now), &rows));
                want.push(InboxGroup { seq: i as u64 + 1, now: Timestamp(now), rows });
            }
            let whole = bytes.len();
            bytes.extend(tail);
            let (got, used) = decode_all(&bytes);
            // Random bytes pass a CRC-32 check about once in 4 billion.
            prop_assert_eq!(&got[..want.len()], &want[..]);
            prop_assert!(used >= whole);
        }
    }
}
