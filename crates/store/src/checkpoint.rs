//! Checkpoints off the writer's path.
//!
//! In WAL mode every commit appends the pages it changed to the
//! write-ahead log; a *checkpoint* copies them back into the database file
//! so the log can start over. By default SQLite does that inside the commit
//! that crosses 1 000 log pages, so one unlucky writer waits for the copy
//! and its fsync. A [`Checkpointer`] does the copying on its own
//! connection (a thread of the service), while the writer keeps a higher
//! automatic threshold as a backstop that finds little left to copy.
//! Passive checkpoints never block readers or the writer, and a checkpoint
//! cut short (crash, exit) loses nothing: the log stays the truth until it
//! is copied.
//!
//! Passive passes alone never let the log start over under a steady stream
//! of commits: SQLite marks the log wholly copied (and flushes the database
//! file) only when no commit came in during the copy. So every
//! [`RESTART_BYTES`] of log the checkpointer finishes the job in a
//! [`Checkpointer::restart`]: it flushes the database file first, with the
//! writer still running, then holds the writer off for one last short pass
//! (a few milliseconds), after which the next commit writes the log from
//! its start again.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Result, StoreError};

/// Log size, in bytes, after which the writer checkpoints by itself when a
/// [`Checkpointer`] runs beside it: 1 GiB. It is a backstop, for when open
/// reads keep the log in use and [`Checkpointer::restart`] cannot let it
/// start over; the commit that crosses it stalls every request waiting, so
/// it is rare by design. The log file may reach this size on disk.
pub const WRITER_BACKSTOP_BYTES: i64 = 1 << 30;

/// Log size, in bytes, at which a [`Checkpointer`] run by the service
/// finishes a checkpoint with [`Checkpointer::restart`] so the log starts
/// over: 128 MiB (about 13 s of single events at 10 000 a second). The
/// database file is flushed first with the writer running, so the last
/// pass, which holds the writer off, has little left to copy.
pub const RESTART_BYTES: i64 = 128 << 20;

/// Log size, in bytes, past which a [`Checkpointer`] stops being polite:
/// 2 GiB. Passive checkpoints cannot copy what an open read still uses, so
/// long reads following one another without a gap (leaderboards of a
/// million contacts on several connections) would let the log grow for
/// ever; past this size [`Checkpointer::reset`] waits for them.
pub const LOG_LIMIT_BYTES: i64 = 2 << 30;

/// A connection that only checkpoints.
pub struct Checkpointer {
    conn: Connection,
    /// Bytes of one page of the database (fixed when it was created).
    page_size: i64,
    /// The database file, to flush it outside SQLite. Never closed (one
    /// descriptor left open per checkpointer): closing a second descriptor
    /// of a file drops every POSIX lock this process holds on it, SQLite's
    /// included.
    file: ManuallyDrop<File>,
    /// The database file's path, for errors.
    path: PathBuf,
}

/// What one checkpoint found and did, in log pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPass {
    /// Pages in the log.
    pub log: i64,
    /// Pages of the log now copied into the database file.
    pub copied: i64,
    /// Bytes of one page of this database.
    pub page_size: i64,
}

impl CheckpointPass {
    /// The log's size in bytes.
    pub fn log_bytes(&self) -> i64 {
        self.log.saturating_mul(self.page_size)
    }
}

impl Checkpointer {
    /// Opens a checkpointing connection to the database at `path`.
    pub fn open(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // This connection commits nothing, so it never checkpoints by itself.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let file = File::open(path).map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Checkpointer {
            conn,
            page_size,
            file: ManuallyDrop::new(file),
            path: path.to_owned(),
        })
    }

    /// Copies what it can of the log into the database file without waiting
    /// for readers or the writer (a passive checkpoint).
    pub fn pass(&self) -> Result<CheckpointPass> {
        let (_busy, log, copied): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        Ok(CheckpointPass {
            log,
            copied,
            page_size: self.page_size,
        })
    }

    /// Writes the pages earlier passes copied into the database file through
    /// to the disk (fdatasync), without any SQLite lock: the writer keeps
    /// committing meanwhile. A checkpoint that then finds the log wholly
    /// copied has little left to flush. Flushing more than SQLite asks is
    /// always safe.
    pub fn flush(&self) -> Result<()> {
        self.file.sync_data().map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Copies the whole log so that the next commit writes it from its start
    /// again, holding the writer off only for the last step:
    ///
    /// 1. a passive pass, then a flush of the database file, while the
    ///    writer goes on;
    /// 2. a second pass for what came in during the flush;
    /// 3. `hold_writer()` (the caller's lock on the writing connection,
    ///    `None` if there is none any more), and a last pass under it: with
    ///    no commit coming in, SQLite copies the rest, flushes the few pages
    ///    copied since step 1 and marks the log wholly copied.
    ///
    /// Returns whether the log was wholly copied (false: a read still uses
    /// older pages of it, or the writer is gone; nothing is lost, try again
    /// later).
    pub fn restart<G>(&self, hold_writer: impl FnOnce() -> Option<G>) -> Result<bool> {
        self.pass()?;
        self.flush()?;
        self.pass()?;
        let Some(guard) = hold_writer() else {
            return Ok(false);
        };
        let last = self.pass();
        drop(guard);
        let last = last?;
        Ok(last.copied == last.log)
    }

    /// Copies the whole log into the database file and empties it, waiting
    /// (up to the connection's busy timeout, 5 s) for the reads that still
    /// use older pages to finish; meanwhile new reads go on and writes wait.
    /// Returns whether it did (false: it gave up waiting; try again later).
    pub fn reset(&self) -> Result<bool> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new database in `dir` whose writer never checkpoints by itself,
    /// with a table `t` holding `values` (SQL rows, `(1), (2)`).
    fn database(dir: &Path, values: &str) -> (std::path::PathBuf, Connection) {
        let path = dir.join("c.db");
        let writer = crate::schema::create(&path).unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch(&format!(
                "CREATE TABLE t(x); INSERT INTO t VALUES {values};"
            ))
            .unwrap();
        (path, writer)
    }

    #[test]
    fn a_pass_copies_the_log_and_the_data_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = database(dir.path(), "(1), (2), (3)");
        let cp = Checkpointer::open(&path).unwrap();
        let pass = cp.pass().unwrap();
        assert!(pass.log > 0, "{pass:?}");
        assert_eq!(pass.copied, pass.log);
        // Nothing new: nothing more to copy.
        assert_eq!(cp.pass().unwrap().copied, pass.log);
        let n: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    /// A read keeps its snapshot's pages in the log: a passive pass cannot
    /// copy past them, a reset waits for the read to end and empties the log.
    #[test]
    fn a_reset_waits_for_old_reads_and_empties_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = database(dir.path(), "(1)");
        let cp = Checkpointer::open(&path).unwrap();
        cp.pass().unwrap();
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let before: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        writer
            .execute_batch("INSERT INTO t VALUES (2); INSERT INTO t VALUES (3);")
            .unwrap();
        let pass = cp.pass().unwrap();
        assert!(
            pass.copied < pass.log,
            "the old read pins the log: {pass:?}"
        );
        let log = path.with_extension("db-wal");
        let ends = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            reader.execute_batch("COMMIT").unwrap();
            before
        });
        let started = std::time::Instant::now();
        assert!(cp.reset().unwrap(), "the log was emptied");
        assert!(started.elapsed() >= std::time::Duration::from_millis(250));
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0, "log emptied");
        assert_eq!(ends.join().unwrap(), 1);
        let n: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    /// Under a writer that commits without a pause, passive passes never
    /// let the log start over; a restart, holding the writer off for its
    /// last pass, does. Fails if `restart` does not take the writer's lock.
    #[test]
    fn a_restart_lets_a_busy_log_start_over() {
        use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
        use std::sync::{Arc, Mutex};

        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = database(dir.path(), "(0)");
        let writer = Arc::new(Mutex::new(writer));
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicI64::new(0));
        let busy = {
            let (writer, stop, commits) = (writer.clone(), stop.clone(), commits.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let w = writer.lock().unwrap();
                    w.execute("INSERT INTO t VALUES (randomblob(3000))", [])
                        .unwrap();
                    drop(w);
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let cp = Checkpointer::open(&path).unwrap();
        let wait_commits = |n: i64| {
            let until = commits.load(Ordering::Relaxed) + n;
            while commits.load(Ordering::Relaxed) < until {
                std::thread::yield_now();
            }
        };
        wait_commits(200);
        let grown = cp.pass().unwrap();
        assert!(grown.log > 200, "{grown:?}");
        assert!(cp.restart(|| writer.lock().ok()).unwrap(), "wholly copied");
        wait_commits(3);
        let after = cp.pass().unwrap();
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        assert!(
            after.log < grown.log / 4,
            "the log started over: {grown:?} then {after:?}"
        );
        let n: i64 = writer
            .lock()
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, commits.load(Ordering::Relaxed) + 1, "no row lost");
    }

    /// A read that still uses older pages keeps the log: the restart says
    /// so and copies what it may; with the writer gone it does not wait.
    #[test]
    fn a_restart_reports_what_it_could_not_do() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = database(dir.path(), "(1)");
        let cp = Checkpointer::open(&path).unwrap();
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert!(!cp.restart(|| Some(())).unwrap(), "the read pins the log");
        reader.execute_batch("COMMIT").unwrap();
        assert!(!cp.restart(|| None::<()>).unwrap(), "no writer to hold");
        assert!(cp.restart(|| Some(())).unwrap());
    }
}
