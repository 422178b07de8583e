//! The fields of an event record and the rules they follow, shared by the
//! scorer's reader ([`crate::events`]) and the import reader
//! ([`crate::rows`]): `id`, `contact_id` and `type` are text, trimmed, not
//! empty, and hold no control character (NUL, tab, newline...: an id is
//! typed and shown, never a place for those); `timestamp` is RFC 3339 with
//! an offset; in NDJSON, a line of white space is skipped. Contact ids
//! follow the same rule ([`identifier`]).

use std::borrow::Cow;

use leadscore_core::Timestamp;
use leadscore_core::condition::trim;
use serde_json::value::RawValue;

use crate::format::json_text;

/// A field refused: its name and why.
pub(crate) type FieldFault = (&'static str, String);

/// Where an events CSV file's required columns are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventColumns {
    pub id: usize,
    pub contact_id: usize,
    pub event_type: usize,
    pub timestamp: usize,
}

impl EventColumns {
    /// Finds the required columns in a header, or says which is missing.
    pub(crate) fn find(header: &[String]) -> Result<EventColumns, String> {
        let col = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                format!(
                    "the header has no '{name}' column (needed: id, contact_id, type, timestamp)"
                )
            })
        };
        Ok(EventColumns {
            id: col("id")?,
            contact_id: col("contact_id")?,
            event_type: col("type")?,
            timestamp: col("timestamp")?,
        })
    }

    /// Whether column `i` is one of the required ones (the others are
    /// properties).
    pub(crate) fn is_required(&self, i: usize) -> bool {
        [self.id, self.contact_id, self.event_type, self.timestamp].contains(&i)
    }
}

fn missing(field: &'static str) -> FieldFault {
    (field, "missing or empty".to_string())
}

/// Refuses an id or type holding a control character, naming it.
pub fn identifier<'a>(value: &'a str, field: &'static str) -> Result<&'a str, FieldFault> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err((
            field,
            format!("holds a control character (U+{:04X})", u32::from(c)),
        )),
        None => Ok(value),
    }
}

/// A required text field of a CSV record, trimmed.
pub(crate) fn required_text<'a>(
    value: &'a str,
    field: &'static str,
) -> Result<&'a str, FieldFault> {
    let v = trim(value);
    if v.is_empty() {
        return Err(missing(field));
    }
    identifier(v, field)
}

/// A required text field of a JSON record (a string, number or boolean,
/// as text), trimmed.
pub(crate) fn required_json<'a>(
    raw: Option<&'a RawValue>,
    field: &'static str,
) -> Result<Cow<'a, str>, FieldFault> {
    let raw = raw.ok_or_else(|| missing(field))?;
    let text = json_text(raw)
        .map_err(|m| (field, m))?
        .ok_or_else(|| missing(field))?;
    let text = match text {
        Cow::Borrowed(s) => Cow::Borrowed(trim(s)),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    };
    if text.is_empty() {
        return Err(missing(field));
    }
    identifier(&text, field)?;
    Ok(text)
}

/// The `timestamp` field.
pub(crate) fn event_time(value: &str) -> Result<Timestamp, FieldFault> {
    Timestamp::parse(value).map_err(|e| ("timestamp", e.to_string()))
}

/// Calls `each(line, offset, index)` for every line of an NDJSON chunk
/// starting at file offset `base` that is not white space alone: `line`
/// is its text, or `Err` when it is not UTF-8; `index` counts every line
/// of the chunk from 0, blank ones included.
pub(crate) fn for_each_ndjson_line<'d, E>(
    data: &'d [u8],
    base: u64,
    mut each: impl FnMut(Result<&'d str, ()>, u64, u64) -> Result<(), E>,
) -> Result<(), E> {
    let mut start = 0usize;
    let mut index = 0u64;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let line = &data[start..end];
        let offset = base + start as u64;
        start = end + 1;
        let this = index;
        index += 1;
        match std::str::from_utf8(line) {
            Err(_) => each(Err(()), offset, this)?,
            Ok(text) if text.bytes().all(|b| b.is_ascii_whitespace()) => {}
            Ok(text) => each(Ok(text), offset, this)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    #[test]
    fn required_fields_are_trimmed_and_never_empty() {
        assert_eq!(required_text("  e1 ", "id"), Ok("e1"));
        assert_eq!(required_text(" \t", "id"), Err(missing("id")));
        assert_eq!(
            required_json(Some(&raw("\" c1 \"")), "contact_id").unwrap(),
            "c1"
        );
        assert_eq!(required_json(Some(&raw("42")), "id").unwrap(), "42");
        for empty in ["\"\"", "\"  \"", "null"] {
            assert_eq!(
                required_json(Some(&raw(empty)), "type"),
                Err(missing("type")),
                "{empty}"
            );
        }
        assert_eq!(required_json(None, "type"), Err(missing("type")));
        assert!(
            required_json(Some(&raw("{}")), "id")
                .unwrap_err()
                .1
                .contains("object")
        );
        for bad in ["e\u{0}1", "a\tb", "line\nbreak"] {
            let err = required_text(bad, "id").unwrap_err();
            assert!(err.1.starts_with("holds a control character"), "{err:?}");
        }
        assert_eq!(
            required_json(Some(&raw("\"page\\u0000view\"")), "type")
                .unwrap_err()
                .1,
            "holds a control character (U+0000)"
        );
    }

    #[test]
    fn ndjson_lines_skip_blank_ones_and_keep_their_place() {
        let data = b"{\"a\":1}\n  \n\xff\n{\"b\":2}";
        let mut seen = Vec::new();
        for_each_ndjson_line::<()>(data, 100, |line, offset, index| {
            seen.push((line.map(str::to_string), offset, index));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (Ok("{\"a\":1}".to_string()), 100, 0),
                (Err(()), 111, 2),
                (Ok("{\"b\":2}".to_string()), 113, 3),
            ]
        );
    }

    #[test]
    fn the_header_must_name_every_required_column() {
        let header: Vec<String> = ["type", "id", "url", "timestamp", "contact_id"]
            .map(String::from)
            .to_vec();
        let c = EventColumns::find(&header).unwrap();
        assert_eq!(
            (c.id, c.contact_id, c.event_type, c.timestamp),
            (1, 4, 0, 3)
        );
        assert!(!c.is_required(2) && c.is_required(0));
        let err = EventColumns::find(&header[..3]).unwrap_err();
        assert!(err.contains("no 'contact_id' column"), "{err}");
    }
}
