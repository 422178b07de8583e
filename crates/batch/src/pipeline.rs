//! Streaming a file through worker threads.
//!
//! A [`ChunkedFile`] reads its header (CSV), then a reader thread cuts the
//! rest into chunks of whole records (a CSV newline inside quotes is not a
//! record end), workers parse chunks in parallel, and the calling thread
//! merges their outputs strictly in file order. Memory holds a few chunks at
//! a time, never the file; results never depend on the number of workers.
//! Chunk buffers are handed back to the reader and reused.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use leadscore_core::condition::Vocabulary;

use crate::contacts::{MAX_RECORD_BYTES, read_csv_header};
use crate::error::{InputError, RecordFault, Result};
use crate::events::{CsvLayout, EventRecord, parse_csv_chunk, parse_ndjson_chunk};
use crate::format::Format;

/// Bytes per chunk handed to a worker.
pub const CHUNK_BYTES: usize = 4 << 20;

/// Number of worker threads: the machine's cores (at least 1).
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> InputError + '_ {
    move |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads until `buf` holds at least `want` bytes or the file ends; returns
/// whether the file ended.
fn fill(file: &mut File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    while buf.len() < want {
        let old = buf.len();
        buf.resize(want, 0);
        let n = match file.read(&mut buf[old..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => {
                buf.truncate(old);
                return Err(e);
            }
        };
        buf.truncate(old + n);
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// End of the last whole record in `buf` (which starts at a record start):
/// one past the last newline that is not inside CSV quotes.
fn record_end(buf: &[u8], format: Format) -> Option<usize> {
    if format == Format::Ndjson || memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map(|i| i + 1);
    }
    let mut in_quotes = false;
    let mut last = None;
    for i in memchr::memchr2_iter(b'"', b'\n', buf) {
        if buf[i] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            last = Some(i + 1);
        }
    }
    last
}

/// One past the first newline outside CSV quotes: the end of the header.
fn first_record_end(buf: &[u8]) -> Option<usize> {
    let mut in_quotes = false;
    for i in memchr::memchr2_iter(b'"', b'\n', buf) {
        if buf[i] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            return Some(i + 1);
        }
    }
    None
}

struct Chunk {
    seq: u64,
    offset: u64,
    data: Vec<u8>,
}

/// An input file opened for chunked, parallel reading.
pub struct ChunkedFile {
    path: PathBuf,
    format: Format,
    file: File,
    buf: Vec<u8>,
    eof: bool,
    offset: u64,
    header: Option<Vec<String>>,
}

impl ChunkedFile {
    /// Opens a file, telling its format by extension and reading the CSV
    /// header line.
    pub fn open(path: &Path) -> Result<ChunkedFile> {
        let format = Format::of(path)?;
        let mut file = File::open(path).map_err(io_err(path))?;
        let mut buf = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
        let mut eof = fill(&mut file, &mut buf, CHUNK_BYTES).map_err(io_err(path))?;
        let mut offset = 0;
        let mut header = None;
        if format == Format::Csv {
            let end = loop {
                match first_record_end(&buf) {
                    Some(e) => break e,
                    None if eof => break buf.len(),
                    None if buf.len() > MAX_RECORD_BYTES => {
                        return Err(RecordFault::new(0, None, "header line too long").locate(path));
                    }
                    None => {
                        let want = buf.len() * 2;
                        eof = fill(&mut file, &mut buf, want).map_err(io_err(path))?;
                    }
                }
            };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&buf[..end]);
            let mut record = csv::ByteRecord::new();
            header = Some(read_csv_header(&mut reader, &mut record, path)?);
            buf.drain(..end);
            offset = end as u64;
        }
        Ok(ChunkedFile {
            path: path.to_path_buf(),
            format,
            file,
            buf,
            eof,
            offset,
            header,
        })
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The CSV header's column names (trimmed); `None` for NDJSON.
    pub fn header(&self) -> Option<&[String]> {
        self.header.as_deref()
    }

    /// An error about the header line.
    pub fn header_error(&self, message: impl Into<String>) -> InputError {
        InputError::Record {
            path: self.path.clone(),
            line: 1,
            field: None,
            message: message.into(),
        }
    }

    /// Parses the rest of the file: `parse(data, offset)` runs on worker
    /// threads for each chunk (`offset` is the chunk's byte offset in the
    /// file); `merge` receives the outputs in file order on this thread.
    /// Stops at the first fault in file order.
    pub fn run<O, P, F>(self, parse: P, mut merge: F) -> Result<()>
    where
        O: Send,
        P: Fn(&[u8], u64) -> std::result::Result<O, RecordFault> + Sync,
        F: FnMut(O) -> Result<()>,
    {
        let n_workers = workers();
        let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(n_workers * 2);
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let (out_tx, out_rx) =
            sync_channel::<(u64, std::result::Result<O, RecordFault>)>(n_workers * 4);
        let (pool_tx, pool_rx) = channel::<Vec<u8>>();
        let path = self.path.clone();
        std::thread::scope(|scope| -> Result<()> {
            let reader = scope.spawn(move || self.read_chunks(chunk_tx, pool_rx));
            for _ in 0..n_workers {
                let rx = Arc::clone(&chunk_rx);
                let tx = out_tx.clone();
                let pool = pool_tx.clone();
                let parse = &parse;
                scope.spawn(move || work(rx, tx, pool, parse));
            }
            drop(out_tx);
            drop(pool_tx);
            let merged = collect(out_rx, &mut merge);
            // On an error, dropping the receivers makes the reader's and
            // workers' sends fail, so they stop early.
            drop(chunk_rx);
            let read = reader.join().unwrap_or_else(|_| {
                Err(InputError::Io {
                    path: path.clone(),
                    source: std::io::Error::other("reader thread panicked"),
                })
            });
            match merged {
                Err(Stop::Fault(fault)) => Err(fault.locate(&path)),
                Err(Stop::Error(e)) => Err(e),
                Ok(()) => read,
            }
        })
    }

    fn read_chunks(mut self, tx: SyncSender<Chunk>, pool: Receiver<Vec<u8>>) -> Result<()> {
        let path = self.path.clone();
        let mut seq = 0u64;
        loop {
            if self.buf.is_empty() && self.eof {
                return Ok(());
            }
            let end = match record_end(&self.buf, self.format) {
                Some(e) if !self.eof => e,
                _ if self.eof => self.buf.len(),
                _ if self.buf.len() > MAX_RECORD_BYTES + CHUNK_BYTES => {
                    return Err(RecordFault::new(
                        self.offset,
                        None,
                        format!("record longer than {MAX_RECORD_BYTES} bytes"),
                    )
                    .locate(&path));
                }
                _ => {
                    let want = self.buf.len() + CHUNK_BYTES;
                    self.eof = fill(&mut self.file, &mut self.buf, want).map_err(io_err(&path))?;
                    continue;
                }
            };
            let mut next = pool
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES + (64 << 10)));
            next.clear();
            next.extend_from_slice(&self.buf[end..]);
            self.buf.truncate(end);
            let len = self.buf.len() as u64;
            let data = std::mem::replace(&mut self.buf, next);
            let chunk = Chunk {
                seq,
                offset: self.offset,
                data,
            };
            if tx.send(chunk).is_err() {
                return Ok(()); // the collector stopped (an error elsewhere)
            }
            seq += 1;
            self.offset += len;
            if !self.eof {
                self.eof =
                    fill(&mut self.file, &mut self.buf, CHUNK_BYTES).map_err(io_err(&path))?;
            }
        }
    }
}

fn work<O, P>(
    rx: Arc<Mutex<Receiver<Chunk>>>,
    tx: SyncSender<(u64, std::result::Result<O, RecordFault>)>,
    pool: Sender<Vec<u8>>,
    parse: &P,
) where
    P: Fn(&[u8], u64) -> std::result::Result<O, RecordFault>,
{
    loop {
        let chunk = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(c) => c,
                Err(_) => return,
            }
        };
        let out = parse(&chunk.data, chunk.offset);
        let _ = pool.send(chunk.data);
        if tx.send((chunk.seq, out)).is_err() {
            return;
        }
    }
}

enum Stop {
    Fault(RecordFault),
    Error(InputError),
}

/// Merges chunk outputs in sequence order; stops at the first fault in
/// file order or the first merge error.
fn collect<O, F: FnMut(O) -> Result<()>>(
    rx: Receiver<(u64, std::result::Result<O, RecordFault>)>,
    merge: &mut F,
) -> std::result::Result<(), Stop> {
    let mut next = 0u64;
    let mut waiting: BTreeMap<u64, std::result::Result<O, RecordFault>> = BTreeMap::new();
    for (seq, out) in rx {
        waiting.insert(seq, out);
        while let Some(out) = waiting.remove(&next) {
            merge(out.map_err(Stop::Fault)?).map_err(Stop::Error)?;
            next += 1;
        }
    }
    Ok(())
}

/// What a worker does with the events of one chunk.
pub trait EventSink {
    /// What one chunk yields.
    type Output: Send;
    /// Takes one event.
    fn event(&mut self, event: &EventRecord<'_>) -> std::result::Result<(), RecordFault>;
    /// Hands over what the chunk yielded.
    fn finish(self) -> Self::Output;
}

/// Reads every events file in order, feeding each chunk's events to a fresh
/// sink made by `make_sink` and calling `merge` with each chunk's output in
/// file order. Stops at the first malformed record, in file order.
pub fn scan<S, M, F>(
    paths: &[PathBuf],
    vocabulary: &Vocabulary,
    make_sink: M,
    mut merge: F,
) -> Result<()>
where
    S: EventSink,
    M: Fn() -> S + Sync,
    F: FnMut(S::Output),
{
    for path in paths {
        let file = ChunkedFile::open(path)?;
        let layout = match file.header() {
            Some(h) => {
                Some(CsvLayout::new(h.to_vec(), vocabulary).map_err(|m| file.header_error(m))?)
            }
            None => None,
        };
        file.run(
            |data, base| {
                let mut sink = make_sink();
                match &layout {
                    Some(l) => parse_csv_chunk(data, base, l, |e| sink.event(e))?,
                    None => parse_ndjson_chunk(data, base, vocabulary, |e| sink.event(e))?,
                }
                Ok(sink.finish())
            },
            |out| {
                merge(out);
                Ok(())
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_end_skips_quoted_newlines() {
        let buf = b"a,\"x\ny\",b\nc,\"p\nq";
        assert_eq!(record_end(buf, Format::Csv), Some(10));
        assert_eq!(record_end(b"a,b\nc,d\n", Format::Csv), Some(8));
        assert_eq!(record_end(b"a,\"b\nc", Format::Csv), None);
        assert_eq!(record_end(b"{\"a\":1}\n{", Format::Ndjson), Some(8));
        assert_eq!(first_record_end(b"\"a\nb\",c\nd\ne\n"), Some(8));
    }
}
