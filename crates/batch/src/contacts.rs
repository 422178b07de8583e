//! Contacts files: CSV with an `id` column, or NDJSON
//! `{"id": .., "attributes": {..}}`, read into a [`ContactTable`].
//!
//! Only the attributes the model reads are kept: the others cannot change a
//! score, and dropping them keeps memory proportional to what matters.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use compact_str::CompactString;
use leadscore_core::condition::Vocabulary;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{InputError, Result};
use crate::format::{Format, json_text};

/// Longest record (CSV row or NDJSON line) accepted, in bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The contacts of one batch, in input order, with the attributes a model
/// reads.
#[derive(Debug, Default)]
pub struct ContactTable {
    ids: Vec<CompactString>,
    /// Ids of up to 24 bytes are stored inline, so a lookup touches one
    /// cache line instead of following a pointer.
    index: FxHashMap<CompactString, u32>,
    /// `width` values per contact, indexed by attribute id.
    attributes: Vec<Option<Box<str>>>,
    width: usize,
    /// Where each contact came from: (file index, line).
    origins: Vec<(u32, u64)>,
    files: Vec<PathBuf>,
}

impl ContactTable {
    /// Reads contacts files in order, keeping the attributes named in
    /// `vocabulary`. A contact id seen twice is an error naming both places.
    pub fn load(paths: &[PathBuf], vocabulary: &Vocabulary) -> Result<ContactTable> {
        let mut table = ContactTable {
            width: vocabulary.attributes.len(),
            ..ContactTable::default()
        };
        for path in paths {
            let format = Format::of(path)?;
            table.files.push(path.clone());
            let file_index = (table.files.len() - 1) as u32;
            let file = File::open(path).map_err(|source| InputError::Io {
                path: path.clone(),
                source,
            })?;
            match format {
                Format::Csv => table.read_csv(path, file, file_index, vocabulary)?,
                Format::Ndjson => table.read_ndjson(path, file, file_index, vocabulary)?,
            }
        }
        Ok(table)
    }

    /// Number of contacts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no contacts.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of contact `i` (input order).
    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// The position of a contact id.
    pub fn find(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The model-read attributes of contact `i`, indexed by attribute id.
    pub fn attributes(&self, i: usize) -> &[Option<Box<str>>] {
        &self.attributes[i * self.width..(i + 1) * self.width]
    }

    fn add(
        &mut self,
        id: &str,
        values: Vec<Option<Box<str>>>,
        path: &Path,
        file_index: u32,
        line: u64,
    ) -> Result<()> {
        if let Some(&first) = self.index.get(id) {
            let (f, first_line) = self.origins[first as usize];
            return Err(InputError::DuplicateContact {
                id: id.to_string(),
                path: path.to_path_buf(),
                line,
                first_path: self.files[f as usize].clone(),
                first_line,
            });
        }
        let n = u32::try_from(self.ids.len()).map_err(|_| InputError::Record {
            path: path.to_path_buf(),
            line,
            field: None,
            message: "more than 4 billion contacts".into(),
        })?;
        let id = CompactString::from(id);
        self.index.insert(id.clone(), n);
        self.ids.push(id);
        self.attributes.extend(values);
        self.origins.push((file_index, line));
        Ok(())
    }

    fn read_csv(
        &mut self,
        path: &Path,
        file: File,
        file_index: u32,
        vocabulary: &Vocabulary,
    ) -> Result<()> {
        let bad = |line: u64, field: Option<&str>, message: String| InputError::Record {
            path: path.to_path_buf(),
            line,
            field: field.map(str::to_string),
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 20, file));
        let mut record = csv::ByteRecord::new();
        let header = read_csv_header(&mut reader, &mut record, path)?;
        let Some(id_col) = header.iter().position(|h| h == "id") else {
            return Err(bad(1, None, "the header has no 'id' column".into()));
        };
        let columns: Vec<Option<usize>> = vocabulary
            .attributes
            .iter()
            .map(|a| header.iter().position(|h| h == a))
            .collect();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(path, e)),
            }
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != header.len() {
                return Err(bad(
                    line,
                    None,
                    format!(
                        "{} columns where the header has {}",
                        record.len(),
                        header.len()
                    ),
                ));
            }
            if record.as_slice().len() > MAX_RECORD_BYTES {
                return Err(bad(
                    line,
                    None,
                    format!("row longer than {MAX_RECORD_BYTES} bytes"),
                ));
            }
            let text = |col: usize| {
                std::str::from_utf8(&record[col])
                    .map_err(|_| bad(line, Some(&header[col]), "not valid UTF-8".into()))
            };
            for col in 0..record.len() {
                text(col)?;
            }
            let id = text(id_col)?.trim();
            if id.is_empty() {
                return Err(bad(line, Some("id"), "empty contact id".into()));
            }
            let mut values = Vec::with_capacity(columns.len());
            for col in &columns {
                values.push(match col {
                    Some(c) => Some(text(*c)?).filter(|v| !v.is_empty()).map(Box::from),
                    None => None,
                });
            }
            let id = id.to_string();
            self.add(&id, values, path, file_index, line)?;
        }
        Ok(())
    }

    fn read_ndjson(
        &mut self,
        path: &Path,
        file: File,
        file_index: u32,
        vocabulary: &Vocabulary,
    ) -> Result<()> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Line<'a> {
            #[serde(borrow)]
            id: &'a RawValue,
            #[serde(borrow, default)]
            attributes: Option<HashMap<std::borrow::Cow<'a, str>, &'a RawValue>>,
        }
        let bad = |line: u64, field: Option<&str>, message: String| InputError::Record {
            path: path.to_path_buf(),
            line,
            field: field.map(str::to_string),
            message,
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        let mut line = 0u64;
        loop {
            buf.clear();
            line += 1;
            let n = reader
                .by_ref()
                .take(MAX_RECORD_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|source| InputError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            if buf.len() > MAX_RECORD_BYTES {
                return Err(bad(
                    line,
                    None,
                    format!("line longer than {MAX_RECORD_BYTES} bytes"),
                ));
            }
            let text =
                std::str::from_utf8(&buf).map_err(|_| bad(line, None, "not valid UTF-8".into()))?;
            if text.trim().is_empty() {
                continue;
            }
            let parsed: Line<'_> = serde_json::from_str(text)
                .map_err(|e| bad(line, None, format!("invalid JSON: {e}")))?;
            let id = json_text(parsed.id)
                .map_err(|m| bad(line, Some("id"), m))?
                .ok_or_else(|| bad(line, Some("id"), "missing or empty contact id".into()))?;
            let id = id.trim().to_string();
            if id.is_empty() {
                return Err(bad(line, Some("id"), "empty contact id".into()));
            }
            let mut values: Vec<Option<Box<str>>> = vec![None; vocabulary.attributes.len()];
            for (name, raw) in parsed.attributes.iter().flatten() {
                let value = json_text(raw)
                    .map_err(|m| bad(line, Some(&format!("attributes.{name}")), m))?;
                if let Some(a) = vocabulary.attribute(name) {
                    values[a.0 as usize] = value.map(|v| Box::from(v.as_ref()));
                }
            }
            self.add(&id, values, path, file_index, line)?;
        }
        Ok(())
    }
}

/// Reads a CSV header line: trimmed names, no duplicates.
pub(crate) fn read_csv_header<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
    path: &Path,
) -> Result<Vec<String>> {
    let bad = |message: String| InputError::Record {
        path: path.to_path_buf(),
        line: 1,
        field: None,
        message,
    };
    match reader.read_byte_record(record) {
        Ok(true) => {}
        Ok(false) => return Err(bad("empty file: expected a header line".into())),
        Err(e) => return Err(csv_error(path, e)),
    }
    let mut header = Vec::with_capacity(record.len());
    for field in record.iter() {
        let name = std::str::from_utf8(field)
            .map_err(|_| bad("header is not valid UTF-8".into()))?
            .trim()
            .trim_start_matches('\u{feff}')
            .to_string();
        if header.contains(&name) {
            return Err(bad(format!("column '{name}' appears twice in the header")));
        }
        header.push(name);
    }
    Ok(header)
}

pub(crate) fn csv_error(path: &Path, e: csv::Error) -> InputError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => InputError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => InputError::Record {
            path: path.to_path_buf(),
            line,
            field: None,
            message: format!("malformed CSV: {other:?}"),
        },
    }
}
