//! Events files: CSV with `id, contact_id, type, timestamp` and property
//! columns, or NDJSON `{"id", "contact_id", "type", "timestamp",
//! "properties": {..}}`. This module turns one record into an
//! [`EventRecord`]; [`crate::pipeline`] feeds it chunks of a file.

use std::borrow::Cow;

use leadscore_core::Timestamp;
use leadscore_core::condition::{PropId, Vocabulary};
use leadscore_core::scoring::PropertyLookup;
use serde_json::value::RawValue;

use crate::error::RecordFault;
use crate::format::{JsonEvent, JsonFields, json_text};
use crate::records::for_each_csv_record;

/// One event, as read from a file, with the properties the model reads.
pub struct EventRecord<'a> {
    /// Event id (trimmed).
    pub id: &'a str,
    /// Contact id (trimmed).
    pub contact_id: &'a str,
    /// Event type (trimmed).
    pub event_type: &'a str,
    /// When it happened.
    pub at: Timestamp,
    /// Properties by the model's property ids.
    pub properties: &'a dyn PropertyLookup,
    /// Byte offset of the record in its file.
    pub offset: u64,
}

/// Where the fields are in a CSV events file.
#[derive(Clone, Debug)]
pub(crate) struct CsvLayout {
    header: Vec<String>,
    id: usize,
    contact_id: usize,
    event_type: usize,
    timestamp: usize,
    /// Column of each model property, by property id.
    properties: Vec<Option<usize>>,
}

impl CsvLayout {
    /// Maps a header to the required columns and the model's properties.
    pub(crate) fn new(header: Vec<String>, vocabulary: &Vocabulary) -> Result<CsvLayout, String> {
        let col = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                format!(
                    "the header has no '{name}' column (needed: id, contact_id, type, timestamp)"
                )
            })
        };
        Ok(CsvLayout {
            id: col("id")?,
            contact_id: col("contact_id")?,
            event_type: col("type")?,
            timestamp: col("timestamp")?,
            properties: vocabulary
                .properties
                .iter()
                .map(|p| header.iter().position(|h| h == p))
                .collect(),
            header,
        })
    }
}

fn required<'a>(value: &'a str, field: &str, offset: u64) -> Result<&'a str, RecordFault> {
    let v = leadscore_core::condition::trim(value);
    if v.is_empty() {
        return Err(RecordFault::new(offset, Some(field), "missing or empty"));
    }
    Ok(v)
}

fn timestamp(value: &str, offset: u64) -> Result<Timestamp, RecordFault> {
    Timestamp::parse(value).map_err(|e| RecordFault::new(offset, Some("timestamp"), e.to_string()))
}

/// Parses a chunk of CSV records (no header) starting at file offset
/// `base`, calling `each` for every event.
pub(crate) fn parse_csv_chunk(
    data: &[u8],
    base: u64,
    layout: &CsvLayout,
    mut each: impl FnMut(&EventRecord<'_>) -> Result<(), RecordFault>,
) -> Result<(), RecordFault> {
    for_each_csv_record(data, base, &layout.header, |fields, offset| {
        let at = timestamp(fields[layout.timestamp], offset)?;
        let rec = EventRecord {
            id: required(fields[layout.id], "id", offset)?,
            contact_id: required(fields[layout.contact_id], "contact_id", offset)?,
            event_type: required(fields[layout.event_type], "type", offset)?,
            at,
            properties: &FieldProps {
                fields,
                columns: &layout.properties,
            },
            offset,
        };
        each(&rec)
    })
}

struct FieldProps<'a> {
    fields: &'a [&'a str],
    columns: &'a [Option<usize>],
}

impl PropertyLookup for FieldProps<'_> {
    fn get(&self, id: PropId) -> Option<&str> {
        let col = (*self.columns.get(id.0 as usize)?)?;
        self.fields.get(col).copied().filter(|v| !v.is_empty())
    }
}

struct NdjsonProps<'a>(&'a [Option<Cow<'a, str>>]);

impl PropertyLookup for NdjsonProps<'_> {
    fn get(&self, id: PropId) -> Option<&str> {
        self.0.get(id.0 as usize)?.as_deref()
    }
}

fn json_field<'a>(
    raw: Option<&'a RawValue>,
    field: &str,
    offset: u64,
) -> Result<Cow<'a, str>, RecordFault> {
    let raw = raw.ok_or_else(|| RecordFault::new(offset, Some(field), "missing"))?;
    let text = json_text(raw)
        .map_err(|m| RecordFault::new(offset, Some(field), m))?
        .ok_or_else(|| RecordFault::new(offset, Some(field), "missing or empty"))?;
    let text = match text {
        Cow::Borrowed(s) => Cow::Borrowed(leadscore_core::condition::trim(s)),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    };
    if text.is_empty() {
        return Err(RecordFault::new(offset, Some(field), "missing or empty"));
    }
    Ok(text)
}

/// Parses a chunk of NDJSON lines starting at file offset `base`.
pub(crate) fn parse_ndjson_chunk(
    data: &[u8],
    base: u64,
    vocabulary: &Vocabulary,
    mut each: impl FnMut(&EventRecord<'_>) -> Result<(), RecordFault>,
) -> Result<(), RecordFault> {
    let mut start = 0usize;
    let mut props: Vec<Option<Cow<'_, str>>> = Vec::new();
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let line = &data[start..end];
        let offset = base + start as u64;
        start = end + 1;
        let text = std::str::from_utf8(line)
            .map_err(|_| RecordFault::new(offset, None, "not valid UTF-8"))?;
        if text.bytes().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let ev: JsonEvent<'_> = serde_json::from_str(text)
            .map_err(|e| RecordFault::new(offset, None, format!("invalid JSON: {e}")))?;
        props.clear();
        props.resize(vocabulary.properties.len(), None);
        for (name, raw) in JsonFields::pairs(&ev.properties) {
            let value = json_text(raw)
                .map_err(|m| RecordFault::new(offset, Some(&format!("properties.{name}")), m))?;
            if let Some(p) = vocabulary.property(name) {
                props[p.0 as usize] = value;
            }
        }
        let ts = json_field(ev.timestamp, "timestamp", offset)?;
        let id = json_field(ev.id, "id", offset)?;
        let contact_id = json_field(ev.contact_id, "contact_id", offset)?;
        let event_type = json_field(ev.event_type, "type", offset)?;
        let rec = EventRecord {
            id: &id,
            contact_id: &contact_id,
            event_type: &event_type,
            at: timestamp(&ts, offset)?,
            properties: &NdjsonProps(&props),
            offset,
        };
        each(&rec)?;
    }
    Ok(())
}
