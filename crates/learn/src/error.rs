//! Errors of learning: each names the file, line, column or option at fault.

use std::path::PathBuf;

/// Why data could not be learned from, or a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A data row is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line of the row.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A column the command needs is not in the file.
    #[error("{}: no column {column:?}{hint}", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// A suggestion (", did you mean ...?") or nothing.
        hint: String,
    },
    /// The outcome (label) column holds a value that is neither a yes nor a no.
    #[error("{}:{line}: column {column:?}: {value:?} is not an outcome (use 1/0, yes/no, true/false, or --positive VALUE)", path.display())]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The label column.
        column: String,
        /// The value found.
        value: String,
    },
    /// Too few outcomes to learn anything trustworthy.
    #[error(
        "too little data to learn from: {rows} outcomes with {positives} conversions (need at least {min_rows} outcomes and {min_positives} conversions, and {min_positives} non-conversions)"
    )]
    TooLittleData {
        /// Rows with an outcome.
        rows: usize,
        /// Rows that converted.
        positives: usize,
        /// Minimum rows.
        min_rows: usize,
        /// Minimum conversions (and non-conversions).
        min_positives: usize,
    },
    /// A model file is unreadable, of another version, or does not fit the data.
    #[error("{}: {message}", path.display())]
    ModelFile {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A predictive dimension's learned model is missing or unreadable.
    #[error("dimension '{dimension}': {message}")]
    Predictive {
        /// The predictive dimension.
        dimension: String,
        /// What is wrong.
        message: String,
    },
    /// No lead has an outcome to learn or measure from.
    #[error("no contact has an outcome")]
    NoOutcomes,
    /// A model's text cannot take the learned points.
    #[error("the model text cannot be rewritten: {0}")]
    Rewrite(String),
    /// An option has a value that cannot work.
    #[error("option {option}: {message}")]
    Option {
        /// The option, as typed (`--folds`).
        option: String,
        /// What is wrong.
        message: String,
    },
}

/// Result of learning.
pub type Result<T, E = LearnError> = std::result::Result<T, E>;
