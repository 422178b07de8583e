//! Whole rows for imports: every attribute and property kept, and bad rows
//! handed back as rejects (with their line) instead of stopping the file.
//!
//! The scorer's readers keep only what a model reads and stop at the first
//! bad record; a database import must keep everything (the model may change
//! later) and keep going. Both share the chunked parallel reading of
//! [`crate::pipeline`] and the CSV splitting of `records`.

use std::path::Path;

use std::borrow::Cow;

use leadscore_core::Timestamp;
use leadscore_core::condition::trim;
use serde_json::value::RawValue;

use crate::error::{RecordFault, Result};
use crate::fields::{
    EventColumns, FieldFault, event_time, for_each_ndjson_line, identifier, required_json,
    required_text,
};
use crate::format::{JsonContact, JsonEvent, JsonFields, json_text};
use crate::pipeline::ChunkedFile;
use crate::records::for_each_csv_record_or_fault;

/// A contact with all its attributes, as read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRow {
    /// Contact id (trimmed).
    pub id: String,
    /// Attribute name and value, in file order; missing values left out.
    pub attributes: Vec<(String, String)>,
}

/// An event with all its properties, as read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// Event id (trimmed).
    pub id: String,
    /// Contact id (trimmed).
    pub contact_id: String,
    /// Event type (trimmed).
    pub event_type: String,
    /// When it happened.
    pub at: Timestamp,
    /// Property name and value; missing values left out.
    pub properties: Vec<(String, String)>,
}

/// A row that could not be read: its 1-based line, the field at fault and
/// why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// Line where the record starts.
    pub line: u64,
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// One chunk's rows in file order, each read or rejected.
pub struct RowChunk<T> {
    /// Rows and rejects in file order.
    pub rows: Vec<std::result::Result<T, Reject>>,
    /// Bytes of the file read so far (for progress).
    pub bytes_done: u64,
}

/// Counts newlines up to record offsets, moving forward only.
struct LineCounter<'a> {
    data: &'a [u8],
    pos: usize,
    lines: u64,
}

impl LineCounter<'_> {
    /// Relative 0-based line of an offset within the chunk.
    fn at(&mut self, rel: usize) -> u64 {
        let rel = rel.min(self.data.len());
        if rel > self.pos {
            self.lines += memchr::memchr_iter(b'\n', &self.data[self.pos..rel]).count() as u64;
            self.pos = rel;
        }
        self.lines
    }
}

struct Parsed<T> {
    rows: Vec<std::result::Result<T, (u64, RecordFault)>>,
    newlines: u64,
    end: u64,
}

/// Reads a contacts file (CSV with an `id` column, or NDJSON), handing rows
/// to `each` chunk by chunk in file order.
pub fn read_contact_rows(
    path: &Path,
    mut each: impl FnMut(RowChunk<ContactRow>) -> Result<()>,
) -> Result<()> {
    let file = ChunkedFile::open(path)?;
    let header = file.header().map(<[String]>::to_vec);
    let id_col = match &header {
        Some(h) => Some(
            h.iter()
                .position(|c| c == "id")
                .ok_or_else(|| file.header_error("the header has no 'id' column"))?,
        ),
        None => None,
    };
    let first_line = u64::from(header.is_some()) + 1;
    let mut lines = Lines::new(first_line);
    file.run(
        |data, base| match (&header, id_col) {
            (Some(h), Some(id_col)) => csv_rows(data, base, h, |fields| {
                let id = trim(fields[id_col]);
                if id.is_empty() {
                    return Err((Some("id".to_string()), "empty contact id".to_string()));
                }
                identifier(id, "id").map_err(row_error)?;
                let attributes = h
                    .iter()
                    .zip(fields)
                    .enumerate()
                    .filter(|(i, (_, v))| *i != id_col && !v.is_empty())
                    .map(|(_, (k, v))| (k.clone(), v.to_string()))
                    .collect();
                Ok(ContactRow {
                    id: id.to_string(),
                    attributes,
                })
            }),
            _ => ndjson_rows(data, base, contact_from_json),
        },
        |parsed| each(lines.place(parsed)),
    )
}

/// Reads an events file (CSV with `id, contact_id, type, timestamp`, or
/// NDJSON), handing rows to `each` chunk by chunk in file order.
pub fn read_event_rows(
    path: &Path,
    mut each: impl FnMut(RowChunk<EventRow>) -> Result<()>,
) -> Result<()> {
    let file = ChunkedFile::open(path)?;
    let header = file.header().map(<[String]>::to_vec);
    let cols = match &header {
        Some(h) => Some(EventColumns::find(h).map_err(|m| file.header_error(m))?),
        None => None,
    };
    let first_line = u64::from(header.is_some()) + 1;
    let mut lines = Lines::new(first_line);
    file.run(
        |data, base| match (&header, cols) {
            (Some(h), Some(c)) => csv_rows(data, base, h, |fields| {
                let req = |col: usize, name| required_text(fields[col], name).map(str::to_string);
                let row = || -> std::result::Result<EventRow, FieldFault> {
                    Ok(EventRow {
                        at: event_time(fields[c.timestamp])?,
                        id: req(c.id, "id")?,
                        contact_id: req(c.contact_id, "contact_id")?,
                        event_type: req(c.event_type, "type")?,
                        properties: h
                            .iter()
                            .zip(fields)
                            .enumerate()
                            .filter(|(i, (_, v))| !c.is_required(*i) && !v.is_empty())
                            .map(|(_, (k, v))| (k.clone(), v.to_string()))
                            .collect(),
                    })
                };
                row().map_err(row_error)
            }),
            _ => ndjson_rows(data, base, event_from_json),
        },
        |parsed| each(lines.place(parsed)),
    )
}

/// Turns chunk-relative line numbers into file line numbers.
struct Lines {
    next_chunk_first_line: u64,
}

impl Lines {
    fn new(first_line: u64) -> Self {
        Lines {
            next_chunk_first_line: first_line,
        }
    }

    fn place<T>(&mut self, parsed: Parsed<T>) -> RowChunk<T> {
        let base = self.next_chunk_first_line;
        self.next_chunk_first_line += parsed.newlines;
        RowChunk {
            rows: parsed
                .rows
                .into_iter()
                .map(|r| {
                    r.map_err(|(rel, f)| Reject {
                        line: base + rel,
                        field: f.field,
                        reason: f.message,
                    })
                })
                .collect(),
            bytes_done: parsed.end,
        }
    }
}

/// Why a row was refused: the field at fault (if one is) and the reason.
pub type RowError = (Option<String>, String);

fn csv_rows<T>(
    data: &[u8],
    base: u64,
    header: &[String],
    make: impl Fn(&[&str]) -> std::result::Result<T, RowError>,
) -> std::result::Result<Parsed<T>, RecordFault> {
    // Both callbacks are called in record order, so one list keeps rows and
    // rejects in file order; a record per line, room made once.
    let newlines = memchr::memchr_iter(b'\n', data).count();
    let out = std::cell::RefCell::new(Vec::with_capacity(newlines + 1));
    for_each_csv_record_or_fault(
        data,
        base,
        header,
        |fields, offset| {
            let row = make(fields).map_err(|(field, message)| RecordFault {
                offset,
                field,
                message,
            });
            out.borrow_mut().push(row);
            Ok(())
        },
        |fault| {
            out.borrow_mut().push(Err(fault));
            Ok(())
        },
    )?;
    let mut counter = LineCounter {
        data,
        pos: 0,
        lines: 0,
    };
    let rows = out
        .into_inner()
        .into_iter()
        .map(|r| r.map_err(|f| (counter.at((f.offset - base) as usize), f)))
        .collect();
    Ok(Parsed {
        rows,
        newlines: newlines as u64,
        end: base + data.len() as u64,
    })
}

fn ndjson_rows<T>(
    data: &[u8],
    base: u64,
    make: impl Fn(&str) -> std::result::Result<T, RowError>,
) -> std::result::Result<Parsed<T>, RecordFault> {
    let newlines = memchr::memchr_iter(b'\n', data).count();
    let mut rows = Vec::with_capacity(newlines + 1);
    for_each_ndjson_line(data, base, |line, offset, index| {
        let result = match line {
            Err(m) => Err((None, m)),
            Ok(text) => make(text),
        };
        rows.push(result.map_err(|(field, message)| {
            (
                index,
                RecordFault {
                    offset,
                    field,
                    message,
                },
            )
        }));
        Ok::<(), RecordFault>(())
    })?;
    Ok(Parsed {
        rows,
        newlines: newlines as u64,
        end: base + data.len() as u64,
    })
}

fn scalar(raw: &RawValue, field: &str) -> std::result::Result<Option<String>, RowError> {
    json_text(raw)
        .map(|v| v.map(|c| c.into_owned()))
        .map_err(|m| (Some(field.to_string()), m))
}

/// A field fault as a row's.
fn row_error((field, message): FieldFault) -> RowError {
    (Some(field.to_string()), message)
}

/// A required field of a JSON line, as text.
fn required(raw: Option<&RawValue>, field: &'static str) -> std::result::Result<String, RowError> {
    required_json(raw, field)
        .map(Cow::into_owned)
        .map_err(row_error)
}

/// The text values of a JSON object, by name (a repeated name: the last
/// one wins); missing values left out.
fn map_values(
    fields: &Option<JsonFields<'_>>,
    prefix: &str,
) -> std::result::Result<Vec<(String, String)>, RowError> {
    let mut out = std::collections::BTreeMap::new();
    for (k, raw) in JsonFields::pairs(fields) {
        let place = format!("{prefix}.{k}");
        crate::fields::name(k, prefix).map_err(|m| (Some(place.clone()), m))?;
        match scalar(raw, &place)? {
            Some(v) => out.insert(k.to_string(), v),
            None => out.remove(k.as_ref()),
        };
    }
    Ok(out.into_iter().collect())
}

/// One NDJSON contact object (as a file line or an API item) to a row, or
/// the field at fault and why.
pub fn contact_from_json(text: &str) -> std::result::Result<ContactRow, RowError> {
    crate::fields::record_length(text.len()).map_err(|m| (None, m))?;
    let line: JsonContact<'_> =
        serde_json::from_str(text).map_err(|e| (None, format!("invalid JSON: {e}")))?;
    Ok(ContactRow {
        id: required(line.id, "id")?,
        attributes: map_values(&line.attributes, "attributes")?,
    })
}

/// One NDJSON event object (as a file line or an API item) to a row, or
/// the field at fault and why.
pub fn event_from_json(text: &str) -> std::result::Result<EventRow, RowError> {
    crate::fields::record_length(text.len()).map_err(|m| (None, m))?;
    let line: JsonEvent<'_> =
        serde_json::from_str(text).map_err(|e| (None, format!("invalid JSON: {e}")))?;
    let ts = required(line.timestamp, "timestamp")?;
    Ok(EventRow {
        id: required(line.id, "id")?,
        contact_id: required(line.contact_id, "contact_id")?,
        event_type: required(line.event_type, "type")?,
        at: event_time(&ts).map_err(row_error)?,
        properties: map_values(&line.properties, "properties")?,
    })
}
