//! Contacts files: CSV with an `id` column, or NDJSON
//! `{"id": .., "attributes": {..}}`, read into a [`ContactTable`].
//!
//! Only the attributes the model reads are kept: the others cannot change a
//! score, and dropping them keeps memory proportional to what matters.

use std::io::Read;
use std::path::{Path, PathBuf};

use compact_str::CompactString;
use leadscore_core::condition::Vocabulary;

use leadscore_core::condition::trim;

use crate::contact_index::{ContactIndex, IdHash};
use crate::error::{InputError, RecordFault, Result, line_of_offset};
use crate::fields::for_each_ndjson_line;
use crate::format::{JsonContact, JsonFields, json_text};
use crate::pipeline::ChunkedFile;
use crate::records::for_each_csv_record;

pub use crate::fields::MAX_RECORD_BYTES;

/// The contacts of one batch, in input order, with the attributes a model
/// reads.
#[derive(Debug, Default)]
pub struct ContactTable {
    ids: Vec<CompactString>,
    /// Contact id to position.
    index: ContactIndex,
    /// `width` values per contact, indexed by attribute id.
    attributes: Vec<Option<Box<str>>>,
    width: usize,
    /// Where each contact came from: (file index, byte offset).
    origins: Vec<(u32, u64)>,
    files: Vec<PathBuf>,
}

/// Contacts parsed from one chunk, in file order.
#[derive(Default)]
struct ChunkContacts {
    ids: Vec<CompactString>,
    offsets: Vec<u64>,
    /// `width` values per contact.
    values: Vec<Option<Box<str>>>,
}

impl ContactTable {
    /// Reads contacts files in order, keeping the attributes named in
    /// `vocabulary`. Files are parsed in parallel chunks; a contact id seen
    /// twice is an error naming both places.
    pub fn load(paths: &[PathBuf], vocabulary: &Vocabulary) -> Result<ContactTable> {
        let width = vocabulary.attributes.len();
        let mut table = ContactTable {
            width,
            ..ContactTable::default()
        };
        for path in paths {
            let file = ChunkedFile::open(path)?;
            table.files.push(path.clone());
            let file_index = (table.files.len() - 1) as u32;
            let merge = |table: &mut ContactTable, chunk: ChunkContacts| {
                table.attributes.reserve(chunk.values.len());
                let mut values = chunk.values.into_iter();
                for (id, offset) in chunk.ids.into_iter().zip(chunk.offsets) {
                    table.add(id, offset, file_index)?;
                    table.attributes.extend(values.by_ref().take(width));
                }
                Ok(())
            };
            match file.header().map(<[String]>::to_vec) {
                Some(header) => {
                    let Some(id_col) = header.iter().position(|h| h == "id") else {
                        return Err(file.header_error("the header has no 'id' column"));
                    };
                    let columns: Vec<Option<usize>> = vocabulary
                        .attributes
                        .iter()
                        .map(|a| header.iter().position(|h| h == a))
                        .collect();
                    file.run(
                        |data, base| csv_chunk(data, base, &header, id_col, &columns),
                        |chunk| merge(&mut table, chunk),
                    )?;
                }
                None => file.run(
                    |data, base| ndjson_chunk(data, base, vocabulary),
                    |chunk| merge(&mut table, chunk),
                )?,
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
        self.index.get(id, IdHash::of(id))
    }

    /// The position of a contact id whose hash is known.
    pub(crate) fn find_hashed(&self, id: &str, h: IdHash) -> Option<u32> {
        self.index.get(id, h)
    }

    /// Starts loading what [`ContactTable::find_hashed`] will read for `h`.
    pub(crate) fn prefetch(&self, h: IdHash) {
        self.index.prefetch(h);
    }

    /// The model-read attributes of contact `i`, indexed by attribute id.
    pub fn attributes(&self, i: usize) -> &[Option<Box<str>>] {
        &self.attributes[i * self.width..(i + 1) * self.width]
    }

    fn add(&mut self, id: CompactString, offset: u64, file_index: u32) -> Result<()> {
        let path = &self.files[file_index as usize];
        let h = IdHash::of(&id);
        if let Some(first) = self.index.get(&id, h) {
            let (f, first_offset) = self.origins[first as usize];
            let first_path = self.files[f as usize].clone();
            let line = |p: &Path, off: u64| {
                line_of_offset(p, off).map_err(|source| InputError::Io {
                    path: p.to_path_buf(),
                    source,
                })
            };
            return Err(InputError::DuplicateContact {
                id: id.to_string(),
                line: line(path, offset)?,
                path: path.clone(),
                first_line: line(&first_path, first_offset)?,
                first_path,
            });
        }
        let n = u32::try_from(self.ids.len()).map_err(|_| InputError::Record {
            path: path.clone(),
            line: 0,
            field: None,
            message: "more than 4 billion contacts".into(),
        })?;
        self.index.insert(id.clone(), h, n);
        self.ids.push(id);
        self.origins.push((file_index, offset));
        Ok(())
    }
}

fn csv_chunk(
    data: &[u8],
    base: u64,
    header: &[String],
    id_col: usize,
    columns: &[Option<usize>],
) -> std::result::Result<ChunkContacts, RecordFault> {
    let mut out = ChunkContacts::default();
    for_each_csv_record(data, base, header, |fields, offset| {
        let id = trim(fields[id_col]);
        if id.is_empty() {
            return Err(RecordFault::new(offset, Some("id"), "empty contact id"));
        }
        crate::fields::identifier(id, "id")
            .map_err(|(f, m)| RecordFault::new(offset, Some(f), m))?;
        out.ids.push(CompactString::from(id));
        out.offsets.push(offset);
        out.values.extend(columns.iter().map(|c| {
            c.map(|c| fields[c])
                .filter(|v| !v.is_empty())
                .map(Box::from)
        }));
        Ok(())
    })?;
    Ok(out)
}

fn ndjson_chunk(
    data: &[u8],
    base: u64,
    vocabulary: &Vocabulary,
) -> std::result::Result<ChunkContacts, RecordFault> {
    let mut out = ChunkContacts::default();
    for_each_ndjson_line(data, base, |line, offset, _| {
        let fault = |field: Option<&str>, m: String| RecordFault::new(offset, field, m);
        let text = line.map_err(|m| fault(None, m))?;
        let parsed: JsonContact<'_> =
            serde_json::from_str(text).map_err(|e| fault(None, format!("invalid JSON: {e}")))?;
        let id = match parsed.id.map(json_text) {
            Some(Ok(Some(id))) if !id.trim().is_empty() => id,
            Some(Err(m)) => return Err(fault(Some("id"), m)),
            _ => return Err(fault(Some("id"), "missing or empty contact id".into())),
        };
        crate::fields::identifier(id.trim(), "id").map_err(|(f, m)| fault(Some(f), m))?;
        let mut values: Vec<Option<Box<str>>> = vec![None; vocabulary.attributes.len()];
        for (name, raw) in JsonFields::pairs(&parsed.attributes) {
            let place = format!("attributes.{name}");
            crate::fields::name(name, "attributes").map_err(|m| fault(Some(&place), m))?;
            let value = json_text(raw).map_err(|m| fault(Some(&place), m))?;
            if let Some(a) = vocabulary.attribute(name) {
                values[a.0 as usize] = value.map(|v| Box::from(v.as_ref()));
            }
        }
        out.ids.push(CompactString::from(id.trim()));
        out.offsets.push(offset);
        out.values.extend(values);
        Ok(())
    })?;
    Ok(out)
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
        crate::fields::name(&name, "header").map_err(bad)?;
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
