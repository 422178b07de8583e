//! Streaming an events file through worker threads.
//!
//! One reader thread cuts the file into chunks of whole records (a CSV
//! newline inside quotes is not a record end), workers parse chunks and feed
//! each event to their own [`EventSink`], and the calling thread merges the
//! sinks' outputs strictly in file order. Memory holds a few chunks at a
//! time, never the file; results never depend on the number of workers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use leadscore_core::condition::Vocabulary;

use crate::contacts::{MAX_RECORD_BYTES, read_csv_header};
use crate::error::{InputError, RecordFault, Result};
use crate::events::{CsvLayout, EventRecord, parse_csv_chunk, parse_ndjson_chunk};
use crate::format::Format;

/// Bytes per chunk handed to a worker.
pub const CHUNK_BYTES: usize = 4 << 20;

/// What a worker does with the events of one chunk.
pub trait EventSink {
    /// What one chunk yields.
    type Output: Send;
    /// Takes one event.
    fn event(&mut self, event: &EventRecord<'_>) -> std::result::Result<(), RecordFault>;
    /// Hands over what the chunk yielded and starts afresh.
    fn take(&mut self) -> Self::Output;
}

struct Chunk {
    seq: u64,
    offset: u64,
    data: Vec<u8>,
}

enum Layout {
    Csv(CsvLayout),
    Ndjson,
}

/// Number of worker threads: the machine's cores (at least 1).
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads every events file in order, feeding each event to a sink made by
/// `make_sink` (one per worker) and calling `merge` with each chunk's output
/// in file order. Stops at the first malformed record, in file order.
pub fn scan<S, M, F>(
    paths: &[std::path::PathBuf],
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
        scan_file(path, vocabulary, &make_sink, &mut merge)?;
    }
    Ok(())
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

fn scan_file<S, M, F>(
    path: &Path,
    vocabulary: &Vocabulary,
    make_sink: &M,
    merge: &mut F,
) -> Result<()>
where
    S: EventSink,
    M: Fn() -> S + Sync,
    F: FnMut(S::Output),
{
    let format = Format::of(path)?;
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut buf = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
    let mut eof = fill(&mut file, &mut buf, CHUNK_BYTES).map_err(io_err(path))?;
    let mut offset = 0u64;
    let layout = match format {
        Format::Ndjson => Layout::Ndjson,
        Format::Csv => {
            // The header is the first record.
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
            let header = read_csv_header(&mut reader, &mut record, path)?;
            let layout = CsvLayout::new(header, vocabulary).map_err(|m| InputError::Record {
                path: path.to_path_buf(),
                line: 1,
                field: None,
                message: m,
            })?;
            buf.drain(..end);
            offset = end as u64;
            Layout::Csv(layout)
        }
    };

    let n_workers = workers();
    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(n_workers * 2);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let (out_tx, out_rx) =
        sync_channel::<(u64, std::result::Result<S::Output, RecordFault>)>(n_workers * 4);

    std::thread::scope(|scope| -> Result<()> {
        let reader =
            scope.spawn(move || read_chunks(path, format, file, buf, eof, offset, chunk_tx));
        for _ in 0..n_workers {
            let rx = Arc::clone(&chunk_rx);
            let tx = out_tx.clone();
            let layout = &layout;
            scope.spawn(move || work(rx, tx, layout, vocabulary, make_sink()));
        }
        drop(out_tx);
        let merged = collect(out_rx, merge);
        // Stop the reader and workers early on an error: dropping the
        // receivers makes their sends fail.
        drop(chunk_rx);
        let read = reader.join().unwrap_or_else(|_| {
            Err(InputError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("reader thread panicked"),
            })
        });
        match merged {
            Err(fault) => Err(fault.locate(path)),
            Ok(()) => read,
        }
    })
}

fn read_chunks(
    path: &Path,
    format: Format,
    mut file: File,
    mut buf: Vec<u8>,
    mut eof: bool,
    mut offset: u64,
    tx: SyncSender<Chunk>,
) -> Result<()> {
    let mut seq = 0u64;
    loop {
        if buf.is_empty() && eof {
            return Ok(());
        }
        let end = match record_end(&buf, format) {
            Some(e) if !eof => e,
            _ if eof => buf.len(),
            _ if buf.len() > MAX_RECORD_BYTES + CHUNK_BYTES => {
                return Err(RecordFault::new(
                    offset,
                    None,
                    format!("record longer than {MAX_RECORD_BYTES} bytes"),
                )
                .locate(path));
            }
            _ => {
                let want = buf.len() + CHUNK_BYTES;
                eof = fill(&mut file, &mut buf, want).map_err(io_err(path))?;
                continue;
            }
        };
        let mut next = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
        next.extend_from_slice(&buf[end..]);
        buf.truncate(end);
        let len = buf.len() as u64;
        if tx
            .send(Chunk {
                seq,
                offset,
                data: buf,
            })
            .is_err()
        {
            return Ok(()); // the collector stopped (an error elsewhere)
        }
        seq += 1;
        offset += len;
        buf = next;
        if !eof {
            eof = fill(&mut file, &mut buf, CHUNK_BYTES).map_err(io_err(path))?;
        }
    }
}

fn work<S: EventSink>(
    rx: Arc<Mutex<Receiver<Chunk>>>,
    tx: SyncSender<(u64, std::result::Result<S::Output, RecordFault>)>,
    layout: &Layout,
    vocabulary: &Vocabulary,
    mut sink: S,
) {
    loop {
        let chunk = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(c) => c,
                Err(_) => return,
            }
        };
        let parsed = match layout {
            Layout::Csv(l) => parse_csv_chunk(&chunk.data, chunk.offset, l, |e| sink.event(e)),
            Layout::Ndjson => {
                parse_ndjson_chunk(&chunk.data, chunk.offset, vocabulary, |e| sink.event(e))
            }
        };
        let out = parsed.map(|()| sink.take());
        if tx.send((chunk.seq, out)).is_err() {
            return;
        }
    }
}

/// Merges chunk outputs in sequence order; returns the first fault in file order.
fn collect<O, F: FnMut(O)>(
    rx: Receiver<(u64, std::result::Result<O, RecordFault>)>,
    merge: &mut F,
) -> std::result::Result<(), RecordFault> {
    let mut next = 0u64;
    let mut waiting: BTreeMap<u64, std::result::Result<O, RecordFault>> = BTreeMap::new();
    for (seq, out) in rx {
        waiting.insert(seq, out);
        while let Some(out) = waiting.remove(&next) {
            merge(out?);
            next += 1;
        }
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
