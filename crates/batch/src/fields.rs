//! The fields of an event record and the rules they follow, shared by the
//! scorer's reader ([`crate::events`]) and the import reader
//! ([`crate::rows`]): `id`, `contact_id` and `type` are text, trimmed, not
//! empty, and hold no control character (NUL, tab, newline...: an id is
//! typed and shown, never a place for those); `timestamp` is RFC 3339 with
//! an offset; in NDJSON, a line of white space is skipped. Contact ids
//! follow the same rule ([`identifier`]).
//!
//! The size limits here are the only ones: files (`score`), imports and
//! the HTTP API apply them alike, with the same messages, so whatever one
//! way in stores, every other can read and reach.

use std::borrow::Cow;

use leadscore_core::Timestamp;
use leadscore_core::condition::trim;
use serde_json::value::RawValue;

use crate::format::json_text;

/// Longest contact id, event id or other identifier (`userId`,
/// `anonymousId`), in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest event type, in bytes.
pub const MAX_TYPE_BYTES: usize = 128;
/// Longest attribute or property name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest record, in bytes: a line of a CSV or NDJSON file (a contact or
/// an event), or one item of an API request. Values are bounded by it.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Refuses a record (a file line or an API item) of `len` bytes past
/// [`MAX_RECORD_BYTES`].
pub fn record_length(len: usize) -> Result<(), String> {
    if len > MAX_RECORD_BYTES {
        return Err(format!(
            "the record has {len} bytes; at most {MAX_RECORD_BYTES} are taken"
        ));
    }
    Ok(())
}

/// Refuses an attribute or property name past [`MAX_NAME_BYTES`] or
/// holding a control character; `place` names it (`attributes.NAME`, a
/// header column...).
pub fn name(name: &str, place: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{place}: the name has {} bytes; at most {MAX_NAME_BYTES} are taken",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{place}: the name holds a control character (U+{:04X})",
            u32::from(c)
        ));
    }
    Ok(())
}

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

/// Refuses an id or type holding a control character or longer than its
/// limit ([`MAX_TYPE_BYTES`] for the field `type`, [`MAX_ID_BYTES`] for
/// every other), naming it.
pub fn identifier<'a>(value: &'a str, field: &'static str) -> Result<&'a str, FieldFault> {
    let max = if field == "type" {
        MAX_TYPE_BYTES
    } else {
        MAX_ID_BYTES
    };
    if value.len() > max {
        return Err((
            field,
            format!("has {} bytes; at most {max} are taken", value.len()),
        ));
    }
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
/// is its text, or `Err` with why not (not UTF-8, longer than
/// [`MAX_RECORD_BYTES`]); `index` counts every line of the chunk from 0,
/// blank ones included.
pub(crate) fn for_each_ndjson_line<'d, E>(
    data: &'d [u8],
    base: u64,
    mut each: impl FnMut(Result<&'d str, String>, u64, u64) -> Result<(), E>,
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
        if let Err(m) = record_length(line.len()) {
            each(Err(m), offset, this)?;
            continue;
        }
        match std::str::from_utf8(line) {
            Err(_) => each(Err("not valid UTF-8".to_string()), offset, this)?,
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
                (Err("not valid UTF-8".to_string()), 111, 2),
                (Ok("{\"b\":2}".to_string()), 113, 3),
            ]
        );
    }

    #[test]
    fn one_set_of_size_limits() {
        let long_id = "i".repeat(MAX_ID_BYTES + 1);
        let err = identifier(&long_id, "id").unwrap_err();
        assert_eq!(err.0, "id");
        assert_eq!(err.1, "has 257 bytes; at most 256 are taken");
        assert!(identifier(&long_id[..MAX_ID_BYTES], "contact_id").is_ok());
        let long_type = "t".repeat(MAX_TYPE_BYTES + 1);
        assert!(identifier(&long_type, "type").is_err());
        assert!(identifier(&long_type[..MAX_TYPE_BYTES], "type").is_ok());
        assert!(name(&"n".repeat(MAX_NAME_BYTES), "attributes.x").is_ok());
        let err = name(&"n".repeat(MAX_NAME_BYTES + 1), "attributes.x").unwrap_err();
        assert!(
            err.starts_with("attributes.x: the name has 257 bytes"),
            "{err}"
        );
        assert!(name("a\u{0}b", "header").is_err());
        assert!(record_length(MAX_RECORD_BYTES).is_ok());
        assert!(record_length(MAX_RECORD_BYTES + 1).is_err());
        // An NDJSON line past the record limit is refused whole, by size.
        let mut data = vec![b'{'; MAX_RECORD_BYTES + 1];
        data.push(b'\n');
        data.extend_from_slice(b"{}\n");
        let mut seen = Vec::new();
        for_each_ndjson_line::<()>(&data, 0, |line, _, index| {
            seen.push((line.is_ok(), index));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![(false, 0), (true, 1)]);
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
