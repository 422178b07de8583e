//! Flushing the write-ahead log outside SQLite, so the service's event
//! writer commits the next group while the last one goes to disk.
//!
//! With `synchronous = FULL` SQLite flushes the log (`fdatasync`) inside
//! every commit, and the writer waits for it: about a third of its time on
//! single events. The service instead commits event groups with
//! [`Store::ingest_events_unflushed`] (`synchronous = NORMAL`: the log is
//! written, not flushed) and hands the replies to a thread that calls
//! [`LogFlusher::flush`] and only then answers. A request is still
//! acknowledged only once its events are on disk, as with FULL, but the
//! flush overlaps the writer's next group, and one flush covers every group
//! committed meanwhile.
//!
//! Why that is as durable as FULL:
//! - SQLite writes the log with plain writes, so flushing the file through
//!   any descriptor makes every byte written before the flush durable, the
//!   commit's frames and the file's length included.
//! - At NORMAL SQLite still flushes where order matters: the log before a
//!   checkpoint copies it, the database file after, and a log's new header
//!   when it starts over, before any frame after it.
//!
//! What differs: for the fraction of a millisecond between the commit and
//! the flush, other connections can read the group's events before they are
//! acknowledged. A power cut in that window loses them, as it would lose any
//! write not yet acknowledged; a killed process loses nothing (the bytes
//! are in the OS's cache).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::store::Store;

/// Flushes one database's write-ahead log file to disk.
pub struct LogFlusher {
    /// The log file (`<database>-wal`), opened read-only: flushing needs no
    /// write access, and SQLite keeps no lock on this file.
    file: File,
    /// The log's path, to notice when it is deleted and made again.
    path: PathBuf,
    /// The inode `file` is, to tell it from a new log at the same path.
    inode: u64,
}

impl LogFlusher {
    /// Opens the log of the database whose resolved path is `database`
    /// (as SQLite names it: the log is that path followed by `-wal`).
    pub fn open(database: &Path) -> Result<LogFlusher> {
        let mut name = database.as_os_str().to_owned();
        name.push("-wal");
        let path = PathBuf::from(name);
        let (file, inode) = open_log(&path)?;
        Ok(LogFlusher { file, path, inode })
    }

    /// Makes every transaction committed before this call durable.
    ///
    /// If the log was deleted and made again since it was opened (only when
    /// every connection to the database closed meanwhile; never while the
    /// service runs), the old file is flushed, then the new one is opened
    /// and flushed too.
    pub fn flush(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| self.io(e))?;
        match std::fs::metadata(&self.path) {
            Ok(m) if m.ino() != self.inode => {
                let (file, inode) = open_log(&self.path)?;
                self.file = file;
                self.inode = inode;
                self.file.sync_data().map_err(|e| self.io(e))
            }
            // The same log; or no log at all, which SQLite deletes only
            // after copying all of it into the (flushed) database file.
            _ => Ok(()),
        }
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn open_log(path: &Path) -> Result<(File, u64)> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let inode = file.metadata().map_err(io)?.ino();
    Ok((file, inode))
}

impl Store {
    /// A [`LogFlusher`] for this database's write-ahead log.
    pub fn log_flusher(&self) -> Result<LogFlusher> {
        // SQLite's own name for the file: symbolic links resolved.
        let resolved = match self.conn.path() {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => self.path.clone(),
        };
        LogFlusher::open(&resolved)
    }

    /// Stores events as [`Store::ingest_events`] does, but the commit does
    /// not wait for the disk: when this returns, the events are stored and
    /// readable, and durable only once a [`LogFlusher::flush`] that starts
    /// after it has returned. Acknowledge nothing before that flush.
    /// The connection goes back to flushing every commit before this
    /// returns, whatever the outcome.
    pub fn ingest_events_unflushed(
        &mut self,
        rows: Vec<leadscore_batch::rows::EventRow>,
        now: leadscore_core::Timestamp,
    ) -> Result<Vec<bool>> {
        self.conn
            .prepare_cached("PRAGMA synchronous = NORMAL")?
            .execute([])?;
        let stored = self.ingest_events(rows, now);
        let restored = self
            .conn
            .prepare_cached("PRAGMA synchronous = FULL")
            .and_then(|mut s| s.execute([]));
        match (stored, restored) {
            (Ok(flags), Ok(_)) => Ok(flags),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"
name = "t"
[[dimension]]
id = "engagement"
[[band]]
id = "hot"
min_score = 50
[[band]]
id = "cold"
min_score = 0
[[rule]]
id = "view"
dimension = "engagement"
on = "page_view"
points = 10
"#;

    fn synchronous(store: &Store) -> i64 {
        store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma")
    }

    /// Unflushed commits are for event groups only: every other write on
    /// the connection (contacts, models, keys) must still wait for the disk.
    #[test]
    fn an_unflushed_group_is_stored_and_later_commits_flush_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.db");
        let now = leadscore_core::Timestamp(1_700_000_000);
        let mut store = Store::create(&path, MODEL, now).expect("create");
        let mut flusher = store.log_flusher().expect("the log");
        let event = |id: &str| leadscore_batch::rows::EventRow {
            id: id.into(),
            contact_id: "c1".into(),
            event_type: "page_view".into(),
            at: now,
            properties: vec![],
        };
        let flags = store
            .ingest_events_unflushed(vec![event("e1"), event("e2"), event("e1")], now)
            .expect("stored");
        assert_eq!(flags, vec![true, true, false]);
        assert_eq!(synchronous(&store), 2, "back to FULL after the group");
        flusher.flush().expect("flushed");
        let score = store.contact_score("c1", now).expect("score");
        assert_eq!(score.card.dimensions, vec![20.0], "{score:?}");
        // A failed group leaves the connection flushing too.
        store
            .conn
            .execute_batch("PRAGMA query_only = 1")
            .expect("pragma");
        assert!(
            store
                .ingest_events_unflushed(vec![event("e3")], now)
                .is_err()
        );
        assert_eq!(synchronous(&store), 2, "back to FULL after an error");
    }

    #[test]
    fn a_log_deleted_and_made_again_is_followed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("x.db");
        let wal = dir.path().join("x.db-wal");
        std::fs::write(&wal, b"old").expect("write");
        let mut f = LogFlusher::open(&db).expect("open");
        assert_eq!(f.path(), wal);
        let first = f.inode;
        std::fs::remove_file(&wal).expect("remove");
        // No log at all: nothing left to flush, not an error.
        f.flush().expect("flush without a log");
        std::fs::write(&wal, b"new").expect("write");
        f.flush().expect("flush the new log");
        assert_ne!(f.inode, first, "the new log is the one flushed now");
    }

    #[test]
    fn a_database_without_a_log_gives_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = LogFlusher::open(&dir.path().join("none.db"))
            .err()
            .expect("no log to open");
        assert!(err.to_string().contains("none.db-wal"), "{err}");
    }
}
