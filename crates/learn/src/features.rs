//! Features: how the columns of a lead table become numbers a learner can
//! use, decided once on the training data ([`FeatureSpec::fit`]) and saved
//! with the model so predictions encode new rows exactly the same way.
//!
//! - numbers stay numbers (missing is NaN) with a "missing" flag when the
//!   training data had gaps;
//! - text columns become one 0/1 feature per frequent value, rarer values
//!   folded into "(other)", missing values into "(missing)";
//! - job titles (columns named like `title`) also give seniority and
//!   department words;
//! - columns where every value differs (ids) are skipped and listed.

use serde::{Deserialize, Serialize};

use crate::table::{Column, Table};

/// How rare a value may be and still get its own feature.
#[derive(Debug, Clone, Copy)]
pub struct FeatureOptions {
    /// A text value seen fewer times than this in training is folded into
    /// "(other)".
    pub min_level_count: usize,
    /// At most this many values per text column get their own feature (the
    /// most frequent ones).
    pub max_levels: usize,
}

impl Default for FeatureOptions {
    fn default() -> FeatureOptions {
        FeatureOptions {
            min_level_count: 10,
            max_levels: 100,
        }
    }
}

/// How one input column is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// A numeric column: its value, and a 0/1 "is missing" feature if
    /// `missing_flag`.
    Number {
        /// Column name.
        column: String,
        /// Whether a missing-value flag feature follows the value.
        missing_flag: bool,
    },
    /// A text column: one 0/1 feature per kept level, then "(other)" and
    /// "(missing)" if present.
    Category {
        /// Column name.
        column: String,
        /// Values with their own feature, most frequent first.
        levels: Vec<String>,
        /// Whether values not in `levels` get an "(other)" feature.
        other: bool,
        /// Whether missing values get a "(missing)" feature.
        missing: bool,
    },
    /// A job-title column read for seniority and department words (on top
    /// of its [`Input::Category`] encoding).
    Title {
        /// Column name.
        column: String,
    },
}

/// A column the features leave out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Column name.
    pub column: String,
    /// Why it is not used.
    pub reason: String,
}

/// The whole encoding: the inputs in order, the features they give.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// The encoded columns, in order.
    pub inputs: Vec<Input>,
    /// Columns left out, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Seniority words of a job title, most senior first.
pub const SENIORITY: &[(&str, &[&str])] = &[
    (
        "executive",
        &[
            "ceo",
            "cto",
            "cfo",
            "cmo",
            "coo",
            "cio",
            "chief",
            "founder",
            "owner",
            "president",
            "partner",
        ],
    ),
    ("vp", &["vp", "vice"]),
    ("director", &["director", "head"]),
    ("manager", &["manager", "lead", "principal"]),
    ("senior", &["senior", "sr"]),
    (
        "junior",
        &["intern", "student", "trainee", "junior", "jr", "assistant"],
    ),
];

/// Department words of a job title.
pub const DEPARTMENTS: &[(&str, &[&str])] = &[
    (
        "marketing",
        &["marketing", "cmo", "growth", "brand", "content", "seo"],
    ),
    ("sales", &["sales", "account", "business", "revenue"]),
    (
        "engineering",
        &[
            "engineer",
            "engineering",
            "developer",
            "software",
            "cto",
            "it",
            "devops",
            "technology",
            "data",
        ],
    ),
    (
        "finance",
        &["finance", "cfo", "accounting", "accountant", "controller"],
    ),
    (
        "people",
        &["hr", "people", "talent", "recruiter", "recruiting"],
    ),
    ("operations", &["operations", "ops", "coo"]),
    ("product", &["product"]),
    (
        "education",
        &["teacher", "professor", "student", "lecturer"],
    ),
];

/// The seniority and department of a title, as indexes into
/// [`SENIORITY`] and [`DEPARTMENTS`] (`len()` for "none found").
pub fn read_title(title: &str) -> (usize, usize) {
    let lower = title.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let find = |table: &[(&str, &[&str])]| {
        table
            .iter()
            .position(|(_, keys)| words.iter().any(|w| keys.contains(w)))
            .unwrap_or(table.len())
    };
    (find(SENIORITY), find(DEPARTMENTS))
}

/// Encoded features, column by column (NaN is a missing number).
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Feature names, one per column.
    pub names: Vec<String>,
    /// The columns, each `rows` long.
    pub columns: Vec<Vec<f32>>,
}

impl Matrix {
    /// Number of features.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// One row as a vector.
    pub fn row(&self, r: usize) -> Vec<f32> {
        self.columns.iter().map(|c| c[r]).collect()
    }

    /// The rows at `index`, in that order.
    pub fn select(&self, index: &[usize]) -> Matrix {
        Matrix {
            rows: index.len(),
            names: self.names.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| index.iter().map(|&i| c[i]).collect())
                .collect(),
        }
    }
}

fn looks_like_title(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower.contains("title") || lower.contains("job_role") || lower == "role" || lower == "position"
}

impl FeatureSpec {
    /// Decides the encoding from training data (the label column already
    /// taken out).
    pub fn fit(table: &Table, options: FeatureOptions) -> FeatureSpec {
        let mut inputs = Vec::new();
        let mut skipped = Vec::new();
        let rows = table.rows();
        for column in &table.columns {
            let name = column.name.clone();
            let present = column.codes().iter().filter(|&&c| c != 0).count();
            let distinct = column.dictionary().len() - 1;
            if present == 0 {
                skipped.push(Skipped {
                    column: name,
                    reason: "no values".into(),
                });
                continue;
            }
            if distinct == 1 && present == rows {
                skipped.push(Skipped {
                    column: name,
                    reason: "the same value on every row".into(),
                });
                continue;
            }
            let numbers = column.as_numbers();
            let all_distinct = rows >= 50 && distinct == present && present * 10 >= rows * 9;
            if all_distinct {
                let integral = numbers
                    .as_ref()
                    .is_none_or(|v| v.iter().all(|x| x.is_nan() || x.fract() == 0.0));
                if integral {
                    skipped.push(Skipped {
                        column: name,
                        reason: "looks like an identifier (every value differs)".into(),
                    });
                    continue;
                }
            }
            match numbers {
                Some(_) => inputs.push(Input::Number {
                    column: name,
                    missing_flag: present < rows,
                }),
                None => {
                    inputs.push(category(column, options));
                    if looks_like_title(&name) {
                        inputs.push(Input::Title { column: name });
                    }
                }
            }
        }
        FeatureSpec { inputs, skipped }
    }

    /// The feature names, in matrix column order.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for input in &self.inputs {
            match input {
                Input::Number {
                    column,
                    missing_flag,
                } => {
                    names.push(column.clone());
                    if *missing_flag {
                        names.push(format!("{column} (missing)"));
                    }
                }
                Input::Category {
                    column,
                    levels,
                    other,
                    missing,
                } => {
                    names.extend(levels.iter().map(|l| format!("{column} = {l}")));
                    if *other {
                        names.push(format!("{column} = (other)"));
                    }
                    if *missing {
                        names.push(format!("{column} = (missing)"));
                    }
                }
                Input::Title { column } => {
                    names.extend(
                        SENIORITY
                            .iter()
                            .map(|(s, _)| format!("{column} seniority = {s}")),
                    );
                    names.extend(
                        DEPARTMENTS
                            .iter()
                            .map(|(d, _)| format!("{column} department = {d}")),
                    );
                }
            }
        }
        names
    }

    /// The input columns the encoding reads.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for input in &self.inputs {
            let c = match input {
                Input::Number { column, .. }
                | Input::Category { column, .. }
                | Input::Title { column } => column.as_str(),
            };
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Encodes a table with this spec. A column the spec needs and the
    /// table lacks is an error naming it.
    pub fn encode(&self, table: &Table) -> crate::Result<Matrix> {
        let rows = table.rows();
        let mut m = Matrix {
            rows,
            ..Matrix::default()
        };
        for input in &self.inputs {
            match input {
                Input::Number {
                    column,
                    missing_flag,
                } => {
                    let col = table.column(column)?;
                    let values = number_values(table, col)?;
                    if *missing_flag {
                        let flag = values
                            .iter()
                            .map(|v| f32::from(u8::from(v.is_nan())))
                            .collect();
                        m.columns.push(values);
                        m.columns.push(flag);
                    } else {
                        m.columns.push(values);
                    }
                }
                Input::Category {
                    column,
                    levels,
                    other,
                    missing,
                } => {
                    let col = table.column(column)?;
                    // Per dictionary code: which feature it turns on.
                    let n = levels.len();
                    let slot_of = |value: Option<&str>| match value {
                        None if *missing => Some(n + usize::from(*other)),
                        None => None,
                        Some(v) => match levels.iter().position(|l| l == v) {
                            Some(i) => Some(i),
                            None if *other => Some(n),
                            None => None,
                        },
                    };
                    let mut by_code: Vec<Option<usize>> = vec![slot_of(None)];
                    by_code.extend(col.dictionary().iter().skip(1).map(|v| slot_of(Some(v))));
                    let width = n + usize::from(*other) + usize::from(*missing);
                    let mut cols = vec![vec![0f32; rows]; width];
                    for (r, &code) in col.codes().iter().enumerate() {
                        if let Some(s) = by_code[code as usize] {
                            cols[s][r] = 1.0;
                        }
                    }
                    m.columns.extend(cols);
                }
                Input::Title { column } => {
                    let col = table.column(column)?;
                    let by_code: Vec<(usize, usize)> =
                        std::iter::once((SENIORITY.len(), DEPARTMENTS.len()))
                            .chain(col.dictionary().iter().skip(1).map(|v| read_title(v)))
                            .collect();
                    let mut sen = vec![vec![0f32; rows]; SENIORITY.len()];
                    let mut dep = vec![vec![0f32; rows]; DEPARTMENTS.len()];
                    for (r, &code) in col.codes().iter().enumerate() {
                        let (s, d) = by_code[code as usize];
                        if s < sen.len() {
                            sen[s][r] = 1.0;
                        }
                        if d < dep.len() {
                            dep[d][r] = 1.0;
                        }
                    }
                    m.columns.extend(sen);
                    m.columns.extend(dep);
                }
            }
        }
        // Names come from one place: `names()` lists them in this order.
        m.names = self.names();
        debug_assert_eq!(m.names.len(), m.columns.len());
        Ok(m)
    }
}

impl FeatureSpec {
    /// Encodes one lead whose column values `value_of` gives (`None` when
    /// missing). A number column holding text reads as missing: scoring a
    /// live contact never fails on one odd value.
    pub fn encode_one<'a>(&self, value_of: impl Fn(&str) -> Option<&'a str>) -> Vec<f32> {
        let mut out = Vec::new();
        for input in &self.inputs {
            match input {
                Input::Number {
                    column,
                    missing_flag,
                } => {
                    let v = value_of(column)
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|v| v.is_finite())
                        .map_or(f32::NAN, |v| v as f32);
                    out.push(v);
                    if *missing_flag {
                        out.push(f32::from(u8::from(v.is_nan())));
                    }
                }
                Input::Category {
                    column,
                    levels,
                    other,
                    missing,
                } => {
                    let start = out.len();
                    out.resize(
                        start + levels.len() + usize::from(*other) + usize::from(*missing),
                        0.0,
                    );
                    let slot = match value_of(column) {
                        None => missing.then(|| levels.len() + usize::from(*other)),
                        Some(v) => match levels.iter().position(|l| l == v) {
                            Some(i) => Some(i),
                            None => other.then_some(levels.len()),
                        },
                    };
                    if let Some(s) = slot {
                        out[start + s] = 1.0;
                    }
                }
                Input::Title { column } => {
                    let (s, d) =
                        value_of(column).map_or((SENIORITY.len(), DEPARTMENTS.len()), read_title);
                    let start = out.len();
                    out.resize(start + SENIORITY.len() + DEPARTMENTS.len(), 0.0);
                    if s < SENIORITY.len() {
                        out[start + s] = 1.0;
                    }
                    if d < DEPARTMENTS.len() {
                        out[start + SENIORITY.len() + d] = 1.0;
                    }
                }
            }
        }
        out
    }
}

fn number_values(table: &Table, col: &Column) -> crate::Result<Vec<f32>> {
    let mut by_code = vec![f32::NAN];
    for (code, v) in col.dictionary().iter().enumerate().skip(1) {
        match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => by_code.push(x as f32),
            _ => {
                let row = col
                    .codes()
                    .iter()
                    .position(|&c| c as usize == code)
                    .unwrap_or(0);
                return Err(crate::LearnError::Row {
                    path: table.path.clone(),
                    line: table.lines.get(row).copied().unwrap_or(0),
                    message: format!(
                        "column {:?}: {v:?} is not a number (the model reads this column as numbers)",
                        col.name
                    ),
                });
            }
        }
    }
    Ok(col.codes().iter().map(|&c| by_code[c as usize]).collect())
}

fn category(column: &Column, options: FeatureOptions) -> Input {
    let dict = column.dictionary();
    let mut counts = vec![0usize; dict.len()];
    for &c in column.codes() {
        counts[c as usize] += 1;
    }
    let mut order: Vec<usize> = (1..dict.len()).collect();
    order.sort_by(|&a, &b| {
        counts[b]
            .cmp(&counts[a])
            .then_with(|| dict[a].cmp(&dict[b]))
    });
    let kept: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&c| counts[c] >= options.min_level_count)
        .take(options.max_levels)
        .collect();
    let folded = order.len() - kept.len();
    Input::Category {
        column: column.name.clone(),
        levels: kept.iter().map(|&c| dict[c].to_string()).collect(),
        other: folded > 0,
        missing: counts[0] > 0,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::table::DEFAULT_MISSING;

    fn table(text: &str) -> Table {
        let missing: Vec<String> = DEFAULT_MISSING.iter().map(|s| s.to_string()).collect();
        Table::from_reader(Path::new("t.csv"), text.as_bytes(), &missing).unwrap()
    }

    #[test]
    fn numbers_levels_other_and_missing() {
        let mut text = String::from("n,c\n");
        for i in 0..30 {
            let c = match i % 3 {
                0 => "red",
                1 => "blue",
                _ if i == 2 => "rare",
                _ => "",
            };
            let n = if i == 5 {
                String::new()
            } else {
                (i % 7).to_string()
            };
            text.push_str(&format!("{n},{c}\n"));
        }
        let t = table(&text);
        let spec = FeatureSpec::fit(&t, FeatureOptions::default());
        assert_eq!(
            spec.names(),
            vec![
                "n",
                "n (missing)",
                "c = blue",
                "c = red",
                "c = (other)",
                "c = (missing)"
            ]
        );
        let m = spec.encode(&t).unwrap();
        assert_eq!(m.width(), 6);
        assert!(m.columns[0][5].is_nan());
        assert_eq!(m.columns[1][5], 1.0);
        assert_eq!(m.row(2), vec![2.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(m.row(3), vec![3.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(m.row(8), vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn identifiers_and_constants_are_skipped_with_a_reason() {
        let mut text = String::from("id,k,v\n");
        for i in 0..60 {
            text.push_str(&format!("{},same,{}\n", 1000 + i, i % 4));
        }
        let spec = FeatureSpec::fit(&table(&text), FeatureOptions::default());
        assert_eq!(spec.names(), vec!["v"]);
        assert_eq!(spec.skipped.len(), 2);
        assert!(spec.skipped[0].reason.contains("identifier"));
    }

    #[test]
    fn titles_give_seniority_and_department() {
        assert_eq!(read_title("VP Sales"), (1, 1));
        assert_eq!(read_title("Director of IT"), (2, 2));
        assert_eq!(read_title("Teacher"), (SENIORITY.len(), 7));
        assert_eq!(read_title(""), (SENIORITY.len(), DEPARTMENTS.len()));
    }

    #[test]
    fn new_data_is_encoded_as_training_data_was() {
        let mut text = String::from("n,c\n");
        for i in 0..20 {
            text.push_str(&format!("{i},{}\n", if i % 2 == 0 { "a" } else { "b" }));
        }
        let spec = FeatureSpec::fit(&table(&text), FeatureOptions::default());
        let m = spec.encode(&table("c,n\nzzz,4\na,\n")).unwrap();
        assert_eq!(m.row(0), vec![4.0, 0.0, 0.0]);
        assert!(m.row(1)[0].is_nan());
        let e = spec.encode(&table("c\na\n")).unwrap_err().to_string();
        assert!(e.contains("no column \"n\""), "{e}");
        let e = spec
            .encode(&table("n,c\nlots,a\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:2") && e.contains("not a number"), "{e}");
    }
}
