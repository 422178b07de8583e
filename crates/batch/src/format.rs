//! File formats: which one a path is, and how JSON scalars become text.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{InputError, Result};

/// The format of an input file, told by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line (`.ndjson` or `.jsonl`).
    Ndjson,
}

impl Format {
    /// The format of a path: `.csv`, `.ndjson` or `.jsonl` (any case).
    pub fn of(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("ndjson" | "jsonl") => Ok(Format::Ndjson),
            _ => Err(InputError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A JSON scalar as text, the way the spec reads JSON inputs: strings as
/// they are, numbers and booleans as written (`50` -> "50"), `null` as
/// missing. An empty string is missing too, as an empty CSV cell is.
/// Objects and arrays are refused.
pub(crate) fn json_text(raw: &RawValue) -> std::result::Result<Option<Cow<'_, str>>, String> {
    let s = raw.get();
    match s.as_bytes().first() {
        Some(b'"') => {
            // Most strings have no escapes: the text between the quotes is
            // the value, with no second parse.
            let inner = &s[1..s.len().saturating_sub(1).max(1)];
            let text: Cow<'_, str> = if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
                Cow::Borrowed(inner)
            } else {
                serde_json::from_str(s).map_err(|e| format!("bad string: {e}"))?
            };
            Ok((!text.is_empty()).then_some(text))
        }
        Some(b'n') => Ok(None),
        Some(b't' | b'f' | b'-' | b'0'..=b'9') => Ok(Some(Cow::Borrowed(s))),
        Some(b'{') => Err("expected a string, number or boolean, found an object".into()),
        Some(b'[') => Err("expected a string, number or boolean, found an array".into()),
        _ => Err("expected a string, number or boolean".into()),
    }
}

/// A JSON object of text-like values (attributes, properties), in file
/// order, borrowed from the line where possible.
pub(crate) struct JsonFields<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonFields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = JsonFields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of names and values")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(JsonFields(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> JsonFields<'a> {
    /// The pairs of an optional object (none when absent).
    pub(crate) fn pairs(
        fields: &Option<Self>,
    ) -> impl Iterator<Item = &(Cow<'a, str>, &'a RawValue)> {
        fields.iter().flat_map(|f| f.0.iter())
    }
}

/// One NDJSON contact line: `{"id": .., "attributes": {..}}`. Unknown keys
/// are errors, so a typo cannot silently drop data.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonContact<'a> {
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub attributes: Option<JsonFields<'a>>,
}

/// One NDJSON event line: `{"id", "contact_id", "type", "timestamp",
/// "properties": {..}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonEvent<'a> {
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub contact_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    pub event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    pub timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub properties: Option<JsonFields<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(json: &str) -> std::result::Result<Option<String>, String> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        json_text(&raw).map(|o| o.map(|c| c.into_owned()))
    }

    #[test]
    fn scalars_become_their_text() {
        assert_eq!(text("\"a\\u00e9\"").unwrap().as_deref(), Some("aé"));
        assert_eq!(text("50").unwrap().as_deref(), Some("50"));
        assert_eq!(text("7.50").unwrap().as_deref(), Some("7.50"));
        assert_eq!(text("true").unwrap().as_deref(), Some("true"));
        assert_eq!(text("null").unwrap(), None);
        assert_eq!(text("\"\"").unwrap(), None);
        assert!(text("{}").is_err());
        assert!(text("[1]").is_err());
    }

    #[test]
    fn format_by_extension() {
        assert_eq!(Format::of(Path::new("a/B.CSV")).unwrap(), Format::Csv);
        assert_eq!(Format::of(Path::new("x.jsonl")).unwrap(), Format::Ndjson);
        assert!(Format::of(Path::new("x.txt")).is_err());
        assert!(Format::of(Path::new("x")).is_err());
    }
}
