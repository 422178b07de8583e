//! A data table read from CSV: one row per lead, one column per attribute,
//! each column dictionary-encoded (a lead table has few distinct values per
//! column, so this keeps a million rows small).

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::error::{LearnError, Result};

/// Cells read as "no value" unless `--missing` adds more.
pub const DEFAULT_MISSING: &[&str] = &["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"];

/// Most columns a data file may have.
pub const MAX_COLUMNS: usize = 10_000;

/// One column: per row, a code into the column's dictionary; code 0 is
/// "missing".
#[derive(Debug, Clone)]
pub struct Column {
    /// Header name.
    pub name: String,
    codes: Vec<u32>,
    /// `dict[0]` is unused (missing); `dict[c]` is the text of code `c`.
    dict: Vec<Box<str>>,
    index: FxHashMap<Box<str>, u32>,
}

impl Column {
    /// An empty column.
    pub fn new(name: impl Into<String>) -> Column {
        Column {
            name: name.into(),
            codes: Vec::new(),
            dict: vec!["".into()],
            index: FxHashMap::default(),
        }
    }

    /// Appends one cell (`None` is missing).
    pub fn push(&mut self, value: Option<&str>) {
        let code = match value {
            None => 0,
            Some(v) => match self.index.get(v) {
                Some(&c) => c,
                None => {
                    let c = self.dict.len() as u32;
                    self.dict.push(v.into());
                    self.index.insert(v.into(), c);
                    c
                }
            },
        };
        self.codes.push(code);
    }

    /// The value of row `row`, `None` if missing.
    pub fn get(&self, row: usize) -> Option<&str> {
        match self.codes[row] {
            0 => None,
            c => Some(&self.dict[c as usize]),
        }
    }

    /// Per row, the code of its value (0: missing).
    pub fn codes(&self) -> &[u32] {
        &self.codes
    }

    /// The distinct values, by code (index 0 is the missing placeholder).
    pub fn dictionary(&self) -> &[Box<str>] {
        &self.dict
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True if the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The values as numbers if every present value is one (missing as
    /// NaN); `None` if some value is text.
    pub fn as_numbers(&self) -> Option<Vec<f64>> {
        let mut by_code = Vec::with_capacity(self.dict.len());
        by_code.push(f64::NAN);
        for v in &self.dict[1..] {
            let x: f64 = v.trim().parse().ok()?;
            if !x.is_finite() {
                return None;
            }
            by_code.push(x);
        }
        Some(self.codes.iter().map(|&c| by_code[c as usize]).collect())
    }
}

/// A whole data file in memory, column by column.
#[derive(Debug, Clone)]
pub struct Table {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The columns, in file order.
    pub columns: Vec<Column>,
    /// Per row, its 1-based line in the file.
    pub lines: Vec<u64>,
}

impl Table {
    /// Reads a CSV file with a header row. Cells equal (after trimming) to
    /// one of `missing` are missing values.
    pub fn read_csv(path: &Path, missing: &[String]) -> Result<Table> {
        let file = std::fs::File::open(path).map_err(|source| LearnError::Io {
            path: path.to_owned(),
            source,
        })?;
        Table::from_reader(
            path,
            std::io::BufReader::with_capacity(1 << 20, file),
            missing,
        )
    }

    /// Reads CSV text from any reader; `path` only names it in messages.
    pub fn from_reader(
        path: &Path,
        reader: impl std::io::Read,
        missing: &[String],
    ) -> Result<Table> {
        let row_error = |line: u64, message: String| LearnError::Row {
            path: path.to_owned(),
            line,
            message,
        };
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(reader);
        let headers = csv
            .headers()
            .map_err(|e| row_error(1, format!("cannot read the header row: {e}")))?
            .clone();
        if headers.len() > MAX_COLUMNS {
            return Err(row_error(
                1,
                format!("{} columns; at most {MAX_COLUMNS} are read", headers.len()),
            ));
        }
        let mut seen = FxHashMap::default();
        let mut columns = Vec::with_capacity(headers.len());
        for (i, h) in headers.iter().enumerate() {
            let name = h.trim().to_owned();
            if name.is_empty() {
                return Err(row_error(1, format!("column {} has no name", i + 1)));
            }
            if let Some(first) = seen.insert(name.clone(), i) {
                return Err(row_error(
                    1,
                    format!(
                        "column {name:?} appears twice (columns {} and {})",
                        first + 1,
                        i + 1
                    ),
                ));
            }
            columns.push(Column::new(name));
        }
        let mut lines = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    let message = match e.kind() {
                        csv::ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => {
                            format!("{len} cells where the header has {expected_len}")
                        }
                        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
                        _ => e.to_string(),
                    };
                    return Err(row_error(line, message));
                }
            }
            lines.push(record.position().map(|p| p.line()).unwrap_or(0));
            for (column, cell) in columns.iter_mut().zip(record.iter()) {
                let cell = cell.trim();
                let is_missing = missing.iter().any(|m| m == cell);
                column.push(if is_missing { None } else { Some(cell) });
            }
        }
        Ok(Table {
            path: path.to_owned(),
            columns,
            lines,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// The column called `name`, or an error with the closest name.
    pub fn column(&self, name: &str) -> Result<&Column> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| LearnError::MissingColumn {
                path: self.path.clone(),
                column: name.to_owned(),
                hint: self.hint(name),
            })
    }

    /// Removes and returns the column called `name`.
    pub fn take(&mut self, name: &str) -> Result<Column> {
        match self.columns.iter().position(|c| c.name == name) {
            Some(i) => Ok(self.columns.remove(i)),
            None => Err(LearnError::MissingColumn {
                path: self.path.clone(),
                column: name.to_owned(),
                hint: self.hint(name),
            }),
        }
    }

    fn hint(&self, name: &str) -> String {
        let wanted = name.to_lowercase();
        let close = self
            .columns
            .iter()
            .map(|c| (edit_distance(&wanted, &c.name.to_lowercase()), &c.name))
            .min();
        match close {
            Some((d, n)) if d <= 3.max(name.len() / 3) => format!(", did you mean {n:?}?"),
            _ => String::new(),
        }
    }

    /// Removes the column `label` and reads it as outcomes: 1 for a
    /// conversion, 0 for none. `positive` names the converting value;
    /// without it 1/yes/true/y (any case) convert and 0/no/false/n do not.
    pub fn take_label(&mut self, label: &str, positive: Option<&str>) -> Result<Vec<u8>> {
        let column = self.take(label)?;
        let mut by_code = vec![None; column.dictionary().len()];
        for (code, value) in column.dictionary().iter().enumerate().skip(1) {
            by_code[code] = match positive {
                Some(p) => Some(u8::from(value.as_ref() == p)),
                None => match value.to_ascii_lowercase().as_str() {
                    "1" | "yes" | "true" | "y" | "1.0" => Some(1),
                    "0" | "no" | "false" | "n" | "0.0" => Some(0),
                    _ => None,
                },
            };
        }
        let mut out = Vec::with_capacity(column.len());
        for (row, &code) in column.codes().iter().enumerate() {
            match by_code[code as usize] {
                Some(y) => out.push(y),
                None => {
                    return Err(LearnError::BadLabel {
                        path: self.path.clone(),
                        line: self.lines[row],
                        column: label.to_owned(),
                        value: column.get(row).unwrap_or("").to_owned(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<Table> {
        let missing: Vec<String> = DEFAULT_MISSING.iter().map(|s| s.to_string()).collect();
        Table::from_reader(Path::new("t.csv"), text.as_bytes(), &missing)
    }

    #[test]
    fn reads_columns_missing_and_numbers() {
        let t = table("a,b\n1,x\nNA,y\n2.5,x\n").unwrap();
        assert_eq!(t.rows(), 3);
        let a = t.column("a").unwrap().as_numbers().unwrap();
        assert_eq!(a[0], 1.0);
        assert!(a[1].is_nan());
        assert!(t.column("b").unwrap().as_numbers().is_none());
        assert_eq!(t.column("b").unwrap().get(2), Some("x"));
        assert_eq!(t.lines, vec![2, 3, 4]);
    }

    #[test]
    fn errors_name_the_line_and_the_column() {
        let e = table("a,b\n1,x\n2\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:3") && e.contains("1 cells"), "{e}");
        let mut t = table("Converted,b\nyes,x\nmaybe,y\n").unwrap();
        let e = t.take_label("Converted", None).unwrap_err().to_string();
        assert!(e.contains("t.csv:3") && e.contains("\"maybe\""), "{e}");
        let t = table("Converted,b\n1,x\n").unwrap();
        let e = t.column("converted").unwrap_err().to_string();
        assert!(e.contains("did you mean \"Converted\""), "{e}");
        assert!(
            table("a,a\n1,2\n")
                .unwrap_err()
                .to_string()
                .contains("appears twice")
        );
    }

    #[test]
    fn labels_read_common_spellings_or_a_named_positive() {
        let mut t = table("y,z\nyes,a\nno,b\nTRUE,c\n0,d\n").unwrap();
        assert_eq!(t.take_label("y", None).unwrap(), vec![1, 0, 1, 0]);
        let mut t = table("y\nwon\nlost\n").unwrap();
        assert_eq!(t.take_label("y", Some("won")).unwrap(), vec![1, 0]);
    }
}
