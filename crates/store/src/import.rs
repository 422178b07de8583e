//! Importing contacts and events files into the database.
//!
//! Files are read in parallel chunks (`leadscore_batch::rows`) and written
//! in transactions of `batch_size` rows through [`crate::ingest`]. Each
//! transaction stores the rows *and* the live scores and transitions they
//! cause, so a crash leaves the database as it was after the last committed
//! batch. Re-running an import is harmless: events are kept once per id,
//! and contact rows that change nothing write nothing.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use leadscore_batch::rows::{
    ContactRow, EventRow, Reject, RowChunk, read_contact_rows, read_event_rows,
};
use leadscore_core::Timestamp;
use rusqlite::TransactionBehavior;

use crate::error::{Result, StoreError};
use crate::event_cache::{EventCache, Known};
use crate::ingest::{ingest, store_contacts};
use crate::model_versions::check_model;
use crate::store::Store;
use crate::values::{model_values, parse_map};

/// How an import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The time the import happens at: live scores are computed for it.
    pub now: Timestamp,
    /// Rows per transaction.
    pub batch_size: usize,
    /// Contacts: replace the whole attribute set instead of merging.
    pub replace: bool,
    /// Where rejected rows go (default: `<file>.rejects.csv` beside it).
    pub rejects: Option<PathBuf>,
}

impl ImportOptions {
    /// Defaults: 100 000 rows per transaction, merge attributes.
    pub fn at(now: Timestamp) -> Self {
        ImportOptions {
            now,
            batch_size: 100_000,
            replace: false,
            rejects: None,
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, Default)]
pub struct ImportSummary {
    /// Rows read (rejects included).
    pub rows: u64,
    /// Rows stored (new events; new or changed contacts).
    pub stored: u64,
    /// Rows that changed nothing (repeated event ids; unchanged contacts).
    pub unchanged: u64,
    /// Rows rejected (see the rejects file).
    pub rejected: u64,
    /// Contacts created (events for unknown contacts create bare ones).
    pub contacts_created: u64,
    /// The rejects file, when there were rejects.
    pub rejects_path: Option<PathBuf>,
    /// Wall time.
    pub seconds: f64,
}

/// Progress, reported after each committed batch: bytes of the file read
/// and its size, rows so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, u64);

/// Writes rejected rows as CSV: `line,field,reason`.
struct Rejects {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl Rejects {
    fn new(input: &Path, path: Option<PathBuf>) -> Self {
        let path = path.unwrap_or_else(|| {
            let mut name = input.file_name().unwrap_or_default().to_os_string();
            name.push(".rejects.csv");
            input.with_file_name(name)
        });
        Rejects { path, out: None }
    }

    fn add(&mut self, r: &Reject) -> Result<()> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        if self.out.is_none() {
            let mut f = BufWriter::new(File::create(&self.path).map_err(io)?);
            f.write_all(b"line,field,reason\n").map_err(io)?;
            self.out = Some(f);
        }
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        if let Some(out) = self.out.as_mut() {
            writeln!(
                out,
                "{},{},{}",
                r.line,
                quote(r.field.as_deref().unwrap_or("")),
                quote(&r.reason)
            )
            .map_err(|source| StoreError::Io {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn finish(self) -> Result<Option<PathBuf>> {
        match self.out {
            Some(mut f) => {
                f.flush().map_err(|source| StoreError::Io {
                    path: self.path.clone(),
                    source,
                })?;
                Ok(Some(self.path))
            }
            None => Ok(None),
        }
    }
}

/// Reads a file's rows, writing rejects, and hands them to `flush` in
/// batches of `options.batch_size`, reporting progress after each.
fn batched<T>(
    path: &Path,
    options: &ImportOptions,
    progress: Progress<'_>,
    read: impl FnOnce(
        &Path,
        &mut dyn FnMut(RowChunk<T>) -> leadscore_batch::error::Result<()>,
    ) -> leadscore_batch::error::Result<()>,
    flush: &mut dyn FnMut(&mut Vec<T>, &mut ImportSummary) -> Result<()>,
) -> Result<ImportSummary> {
    let started = Instant::now();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut summary = ImportSummary::default();
    let mut rejects = Rejects::new(path, options.rejects.clone());
    let mut pending: Vec<T> = Vec::new();
    let mut bytes = 0;
    read(path, &mut |chunk: RowChunk<T>| {
        bytes = chunk.bytes_done;
        for row in chunk.rows {
            summary.rows += 1;
            match row {
                Ok(r) => pending.push(r),
                Err(reject) => {
                    summary.rejected += 1;
                    rejects.add(&reject).map_err(to_input)?;
                }
            }
            if pending.len() >= options.batch_size {
                flush(&mut pending, &mut summary).map_err(to_input)?;
                progress(bytes, size, summary.rows);
            }
        }
        Ok(())
    })?;
    flush(&mut pending, &mut summary)?;
    progress(bytes, size, summary.rows);
    summary.rejects_path = rejects.finish()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

impl Store {
    /// Imports a contacts file: new contacts are created, existing ones get
    /// the given attributes (or, with `replace`, exactly these attributes).
    /// A contact whose attributes change is re-matched and re-scored.
    pub fn import_contacts(
        &mut self,
        path: &Path,
        options: &ImportOptions,
        progress: Progress<'_>,
    ) -> Result<ImportSummary> {
        let (model, slots, version, now) =
            (&self.model, &self.slots, self.model_version, options.now);
        let conn = &mut self.conn;
        let mut flush =
            |pending: &mut Vec<ContactRow>, summary: &mut ImportSummary| -> Result<()> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                check_model(&tx, version)?;
                store_contacts(
                    &tx,
                    (model, slots, version),
                    pending.drain(..),
                    options.replace,
                    now,
                    summary,
                )?;
                tx.commit()?;
                Ok(())
            };
        batched(
            path,
            options,
            progress,
            |p, f| read_contact_rows(p, f),
            &mut flush,
        )
    }

    /// Imports an events file. An event id already stored is a duplicate and
    /// changes nothing; an event for an unknown contact creates a bare
    /// contact. Each batch's touched contacts are re-scored in the same
    /// transaction.
    pub fn import_events(
        &mut self,
        path: &Path,
        options: &ImportOptions,
        progress: Progress<'_>,
    ) -> Result<ImportSummary> {
        // Every stored contact with the attributes the model reads, and the
        // next `seq` per contact as batches learn it.
        let mut cache = EventCache::default();
        cache.revalidate(&self.conn)?;
        {
            let mut stmt = self
                .conn
                .prepare("SELECT id, ext_id, attributes FROM contacts")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let map = parse_map(&r.get::<_, String>(2)?)?;
                cache.known.insert(
                    r.get(1)?,
                    Known {
                        rowid: r.get(0)?,
                        values: model_values(&self.model.vocabulary, &map),
                    },
                );
            }
        }
        let (model, slots, version, now) =
            (&self.model, &self.slots, self.model_version, options.now);
        let conn = &mut self.conn;
        let mut flush = |pending: &mut Vec<EventRow>, summary: &mut ImportSummary| -> Result<()> {
            // An imported event makes its contact known.
            crate::visitors::forget(conn, pending.iter().map(|r| r.contact_id.as_str()))?;
            ingest(
                conn,
                (model, slots),
                version,
                now,
                pending,
                &mut cache,
                summary,
                None,
            )
            .map(|_| ())
        };
        batched(
            path,
            options,
            progress,
            |p, f| read_event_rows(p, f),
            &mut flush,
        )
    }
}

/// Carries a store error through the file reader's callback.
fn to_input(e: StoreError) -> leadscore_batch::InputError {
    leadscore_batch::InputError::Io {
        path: PathBuf::from("database"),
        source: std::io::Error::other(e.to_string()),
    }
}
