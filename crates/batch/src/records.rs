//! Splitting a chunk of a CSV file into records of text fields.
//!
//! Shared by the contacts and events readers. A chunk without any quote
//! character that is valid UTF-8 as a whole is split by hand (the common,
//! machine-written case, several times faster); anything else goes through
//! the `csv` crate, which handles quoting, escaped quotes and newlines inside
//! fields. Either way each record must have as many fields as the header.

use crate::error::RecordFault;

/// The length of a record without its line end (`\n` or `\r\n`).
fn line_length(record: &[u8]) -> usize {
    let r = record.strip_suffix(b"\n").unwrap_or(record);
    r.strip_suffix(b"\r").unwrap_or(r).len()
}

/// Calls `each(fields, offset)` for every non-blank record of `data`, a
/// chunk of whole CSV records starting at byte `base` of its file. A record
/// with the wrong number of fields or bad UTF-8 stops the chunk.
pub(crate) fn for_each_csv_record(
    data: &[u8],
    base: u64,
    header: &[String],
    each: impl FnMut(&[&str], u64) -> Result<(), RecordFault>,
) -> Result<(), RecordFault> {
    for_each_csv_record_or_fault(data, base, header, each, Err)
}

/// Like [`for_each_csv_record`], but a record with the wrong number of
/// fields or bad UTF-8 goes to `bad`, which may return `Ok` to go on with
/// the next record (imports put such rows in a rejects file).
pub(crate) fn for_each_csv_record_or_fault(
    data: &[u8],
    base: u64,
    header: &[String],
    mut each: impl FnMut(&[&str], u64) -> Result<(), RecordFault>,
    mut bad: impl FnMut(RecordFault) -> Result<(), RecordFault>,
) -> Result<(), RecordFault> {
    let width = header.len();
    let mut fields: Vec<&str> = Vec::with_capacity(width);
    if memchr::memchr(b'"', data).is_none()
        && let Ok(text) = std::str::from_utf8(data)
    {
        // One SIMD pass finds every delimiter of the chunk.
        let bytes = text.as_bytes();
        let mut record_start = 0usize;
        let mut field_start = 0usize;
        let mut finish = |fields: &mut Vec<&str>, record_start: usize, end: usize| {
            let offset = base + record_start as u64;
            if let Some(last) = fields.last_mut() {
                *last = last.strip_suffix('\r').unwrap_or(last);
            }
            let blank = fields.len() == 1 && fields[0].is_empty();
            let result = if blank || end == record_start {
                Ok(())
            } else if let Err(m) =
                crate::fields::record_length(line_length(&bytes[record_start..end]))
            {
                bad(RecordFault::new(offset, None, m))
            } else {
                match check_width(fields.len(), width, offset) {
                    Ok(()) => each(fields, offset),
                    Err(f) => bad(f),
                }
            };
            fields.clear();
            result
        };
        for i in memchr::memchr2_iter(b',', b'\n', bytes) {
            fields.push(&text[field_start..i]);
            field_start = i + 1;
            if bytes[i] == b'\n' {
                finish(&mut fields, record_start, i)?;
                record_start = i + 1;
            }
        }
        if record_start < bytes.len() {
            fields.push(&text[field_start..]);
            finish(&mut fields, record_start, bytes.len())?;
        }
        return Ok(());
    }

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut bytes = csv::ByteRecord::new();
    loop {
        let at_byte = reader.position().byte();
        match reader.read_byte_record(&mut bytes) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let off = e.position().map_or(at_byte, |p| p.byte());
                return Err(RecordFault::new(
                    base + off,
                    None,
                    format!("malformed CSV: {e}"),
                ));
            }
        }
        let offset = base + bytes.position().map_or(at_byte, |p| p.byte());
        if bytes.len() == 1 && bytes[0].is_empty() {
            continue; // a blank line
        }
        // The csv crate repairs bad quoting (`"/pri"cing` reads as
        // `/pricing`); this reader refuses it instead.
        let end = (reader.position().byte() as usize).min(data.len());
        if let Err(m) =
            crate::fields::record_length(line_length(&data[(at_byte as usize).min(end)..end]))
        {
            bad(RecordFault::new(offset, None, m))?;
            continue;
        }
        if let Err((field, why)) = check_quotes(&data[(at_byte as usize).min(end)..end]) {
            bad(RecordFault::new(
                offset,
                header.get(field).map(String::as_str),
                format!("malformed CSV: {why}"),
            ))?;
            continue;
        }
        check_width(bytes.len(), width, offset)?;
        let record =
            csv::StringRecord::from_byte_record(std::mem::take(&mut bytes)).map_err(|e| {
                let field = e.utf8_error().field();
                RecordFault::new(
                    offset,
                    header.get(field).map(String::as_str),
                    "not valid UTF-8",
                )
            })?;
        let fields: Vec<&str> = record.iter().collect();
        each(&fields, offset)?;
        drop(fields);
        bytes = record.into_byte_record();
    }
}

/// Checks a record's quoting as RFC 4180 writes it: a quoted field is
/// closed, and its closing quote is followed by a comma or the end of the
/// record; a quote inside a quoted field is doubled; an unquoted field
/// holds no quote. Returns the field (0-based) at fault and why.
fn check_quotes(raw: &[u8]) -> Result<(), (usize, &'static str)> {
    // Blank lines the reader skipped before the record, and its line end
    // (outside quotes, a record cannot end with either).
    let start = raw
        .iter()
        .position(|&b| b != b'\n' && b != b'\r')
        .unwrap_or(raw.len());
    let mut end = raw.len();
    while end > start && (raw[end - 1] == b'\n' || raw[end - 1] == b'\r') {
        end -= 1;
    }
    let (mut i, mut field) = (start, 0usize);
    loop {
        if i < end && raw[i] == b'"' {
            i += 1;
            loop {
                if i >= end {
                    return Err((field, "a quote is not closed"));
                }
                if raw[i] == b'"' {
                    if i + 1 < end && raw[i + 1] == b'"' {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            if i < end && raw[i] != b',' {
                return Err((field, "text after a closing quote"));
            }
        } else {
            while i < end && raw[i] != b',' {
                if raw[i] == b'"' {
                    return Err((field, "a quote inside a field that is not quoted"));
                }
                i += 1;
            }
        }
        if i >= end {
            return Ok(());
        }
        i += 1;
        field += 1;
    }
}

fn check_width(found: usize, width: usize, offset: u64) -> Result<(), RecordFault> {
    if found != width {
        return Err(RecordFault::new(
            offset,
            None,
            format!("{found} columns where the header has {width}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(data: &[u8], width: usize) -> Result<Vec<(Vec<String>, u64)>, String> {
        let header: Vec<String> = (0..width).map(|i| format!("h{i}")).collect();
        let mut out = Vec::new();
        for_each_csv_record(data, 100, &header, |f, off| {
            out.push((f.iter().map(|s| s.to_string()).collect(), off));
            Ok(())
        })
        .map_err(|e| format!("{}@{} {:?}", e.message, e.offset, e.field))?;
        Ok(out)
    }

    #[test]
    fn plain_and_quoted_chunks_give_the_same_fields() {
        let plain = records(b"a,b\r\n\nc,\n", 2).unwrap();
        assert_eq!(
            plain,
            vec![
                (vec!["a".into(), "b".into()], 100),
                (vec!["c".into(), "".into()], 106)
            ]
        );
        let quoted = records(b"\"a\",b\n\nc,\"\"\n", 2).unwrap();
        assert_eq!(quoted[0].0, plain[0].0);
        assert_eq!(quoted[1].0, plain[1].0);
        let inner = records(b"\"x,\"\"y\"\"\nz\",1\n", 2).unwrap();
        assert_eq!(inner[0].0, vec!["x,\"y\"\nz".to_string(), "1".to_string()]);
    }

    #[test]
    fn bad_quoting_is_an_error_not_a_repair() {
        assert_eq!(
            records(b"a,\"/pri\"cing\n", 2).unwrap_err(),
            "malformed CSV: text after a closing quote@100 Some(\"h1\")"
        );
        assert_eq!(
            records(b"a,\"b\nc,d\n", 2).unwrap_err(),
            "malformed CSV: a quote is not closed@100 Some(\"h1\")"
        );
        assert_eq!(
            records(b"\"a\",5\"\n", 2).unwrap_err(),
            "malformed CSV: a quote inside a field that is not quoted@100 Some(\"h1\")"
        );
        // Well-formed quoting still reads, blank lines and CRLF included.
        let ok = records(b"\n\r\n\"a,\"\"b\"\"\",\"\"\r\n\"c\nd\",e", 2).unwrap();
        assert_eq!(ok[0].0, vec!["a,\"b\"".to_string(), String::new()]);
        assert_eq!(ok[1].0, vec!["c\nd".to_string(), "e".to_string()]);
    }

    #[test]
    fn width_and_utf8_errors_name_the_offset_and_field() {
        assert_eq!(
            records(b"a,b\na\n", 2).unwrap_err(),
            "1 columns where the header has 2@104 None"
        );
        assert_eq!(
            records(b"\"a\",b\xff\n", 2).unwrap_err(),
            "not valid UTF-8@100 Some(\"h1\")"
        );
        assert_eq!(
            records(b"a,b\xff\n", 2).unwrap_err(),
            "not valid UTF-8@100 Some(\"h1\")"
        );
    }
}
