//! Events files: CSV with `id, contact_id, type, timestamp` and property
//! columns, or NDJSON `{"id", "contact_id", "type", "timestamp",
//! "properties": {..}}`. This module turns one record into an
//! [`EventRecord`]; [`crate::pipeline`] feeds it chunks of a file.

use std::borrow::Cow;

use leadscore_core::Timestamp;
use leadscore_core::condition::{PropId, Vocabulary};
use leadscore_core::scoring::PropertyLookup;

use crate::error::RecordFault;
use crate::fields::{
    EventColumns, FieldFault, event_time, for_each_ndjson_line, required_json, required_text,
};
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
    columns: EventColumns,
    /// Column of each model property, by property id.
    properties: Vec<Option<usize>>,
}

impl CsvLayout {
    /// Maps a header to the required columns and the model's properties.
    pub(crate) fn new(header: Vec<String>, vocabulary: &Vocabulary) -> Result<CsvLayout, String> {
        Ok(CsvLayout {
            columns: EventColumns::find(&header)?,
            properties: vocabulary
                .properties
                .iter()
                .map(|p| header.iter().position(|h| h == p))
                .collect(),
            header,
        })
    }
}

/// A field fault at a record's offset.
fn at(offset: u64) -> impl Fn(FieldFault) -> RecordFault {
    move |(field, message)| RecordFault::new(offset, Some(field), message)
}

/// Parses a chunk of CSV records (no header) starting at file offset
/// `base`, calling `each` for every event.
pub(crate) fn parse_csv_chunk(
    data: &[u8],
    base: u64,
    layout: &CsvLayout,
    mut each: impl FnMut(&EventRecord<'_>) -> Result<(), RecordFault>,
) -> Result<(), RecordFault> {
    let c = layout.columns;
    for_each_csv_record(data, base, &layout.header, |fields, offset| {
        let at = at(offset);
        let when = event_time(fields[c.timestamp]).map_err(&at)?;
        let rec = EventRecord {
            id: required_text(fields[c.id], "id").map_err(&at)?,
            contact_id: required_text(fields[c.contact_id], "contact_id").map_err(&at)?,
            event_type: required_text(fields[c.event_type], "type").map_err(&at)?,
            at: when,
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

/// Parses a chunk of NDJSON lines starting at file offset `base`.
pub(crate) fn parse_ndjson_chunk(
    data: &[u8],
    base: u64,
    vocabulary: &Vocabulary,
    mut each: impl FnMut(&EventRecord<'_>) -> Result<(), RecordFault>,
) -> Result<(), RecordFault> {
    let mut props: Vec<Option<Cow<'_, str>>> = Vec::new();
    for_each_ndjson_line(data, base, |line, offset, _| {
        let text = line.map_err(|m| RecordFault::new(offset, None, m))?;
        let ev: JsonEvent<'_> = serde_json::from_str(text)
            .map_err(|e| RecordFault::new(offset, None, format!("invalid JSON: {e}")))?;
        props.clear();
        props.resize(vocabulary.properties.len(), None);
        for (name, raw) in JsonFields::pairs(&ev.properties) {
            let place = format!("properties.{name}");
            crate::fields::name(name, "properties")
                .map_err(|m| RecordFault::new(offset, Some(&place), m))?;
            let value = json_text(raw).map_err(|m| RecordFault::new(offset, Some(&place), m))?;
            if let Some(p) = vocabulary.property(name) {
                props[p.0 as usize] = value;
            }
        }
        let at = at(offset);
        let ts = required_json(ev.timestamp, "timestamp").map_err(&at)?;
        let id = required_json(ev.id, "id").map_err(&at)?;
        let contact_id = required_json(ev.contact_id, "contact_id").map_err(&at)?;
        let event_type = required_json(ev.event_type, "type").map_err(&at)?;
        let rec = EventRecord {
            id: &id,
            contact_id: &contact_id,
            event_type: &event_type,
            at: event_time(&ts).map_err(&at)?,
            properties: &NdjsonProps(&props),
            offset,
        };
        each(&rec)
    })
}
