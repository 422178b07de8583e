//! Input errors: every one names the file, and where it can, the line and
//! the field.

use std::path::PathBuf;

/// Why an input file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file's extension does not say its format.
    #[error("{}: cannot tell the format from the extension (use .csv, .ndjson or .jsonl)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A record is malformed.
    #[error("{}:{line}: {}{message}", path.display(), field.as_ref().map(|f| format!("field '{f}': ")).unwrap_or_default())]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// The field at fault, if one is.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The same contact id appears twice.
    #[error("{}:{line}: contact id {id:?} appears twice (first at {}:{first_line})", path.display(), first_path.display())]
    DuplicateContact {
        /// The contact id.
        id: String,
        /// Where it appears the second time.
        path: PathBuf,
        /// Line of the second appearance.
        line: u64,
        /// Where it appeared first.
        first_path: PathBuf,
        /// Line of the first appearance.
        first_line: u64,
    },
}

/// Result of reading inputs.
pub type Result<T, E = InputError> = std::result::Result<T, E>;

/// A record error before its file and line are known.
#[derive(Debug, Clone)]
pub struct RecordFault {
    /// Byte offset of the record in its file.
    pub offset: u64,
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl RecordFault {
    /// A fault at a byte offset, in a field.
    pub fn new(offset: u64, field: Option<&str>, message: impl Into<String>) -> Self {
        RecordFault {
            offset,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// Turns the fault into an error naming the file and line, counting the
    /// newlines before its offset (only ever done once, on the error path).
    pub(crate) fn locate(self, path: &std::path::Path) -> InputError {
        let line = match line_of_offset(path, self.offset) {
            Ok(l) => l,
            Err(source) => {
                return InputError::Io {
                    path: path.to_path_buf(),
                    source,
                };
            }
        };
        InputError::Record {
            path: path.to_path_buf(),
            line,
            field: self.field,
            message: self.message,
        }
    }
}

/// 1-based line number of a byte offset in a file.
pub(crate) fn line_of_offset(path: &std::path::Path, offset: u64) -> std::io::Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut remaining = offset;
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 1u64;
    while remaining > 0 {
        let want = remaining.min(buf.len() as u64) as usize;
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        remaining -= n as u64;
    }
    Ok(lines)
}
