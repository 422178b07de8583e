//! Store errors.

use std::path::PathBuf;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No database at that path.
    #[error("{}: no leadscore database here (create one with `leadscore init --model M.toml`)", .0.display())]
    Missing(PathBuf),
    /// A database already exists at that path.
    #[error("{}: a database already exists here", .0.display())]
    Exists(PathBuf),
    /// The file is not a leadscore database, or one of another version.
    #[error("{}: {message}", path.display())]
    Schema {
        /// The database file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A model text was rejected.
    #[error("model: {0}")]
    Model(#[from] leadscore_core::ModelError),
    /// An input file could not be read.
    #[error(transparent)]
    Input(#[from] leadscore_batch::InputError),
    /// No contact with that id.
    #[error("no contact with id {0:?}")]
    UnknownContact(String),
    /// A filter (`--where`) is not a valid condition.
    #[error("--where: {0}")]
    Filter(String),
    /// Reading or writing a file failed (the rejects file, the database
    /// file when flushed).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Stored data does not read back (a damaged or hand-edited database).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// A segment definition that cannot work (the part named first).
    #[error("segment: {0}")]
    Segment(String),
    /// An API key that cannot be made as asked.
    #[error("{0}")]
    Key(String),
    /// Another connection (a CLI `model set` beside a running service, say)
    /// stored a newer model version than the one this handle scores with.
    /// The store's write methods pick it up and try again by themselves;
    /// an import stops with this error (run it again: imports are
    /// idempotent).
    #[error(
        "model version {found} was set by another process while this one used version {held}; run the command again"
    )]
    ModelChanged {
        /// The version this handle held.
        held: i64,
        /// The database's current version.
        found: i64,
    },
    /// A group of events too large for one inbox record
    /// ([`crate::inbox::MAX_RECORD_BYTES`]); nothing of it was written.
    #[error("{events} events take {bytes} bytes, more than one inbox record holds ({limit} bytes)")]
    GroupTooLarge {
        /// Events in the group.
        events: usize,
        /// Bytes they take in a record.
        bytes: usize,
        /// The most a record may take.
        limit: usize,
    },
    /// A predictive dimension's learned model is missing or unreadable.
    #[error("model: dimension '{dimension}': {message}")]
    Predictive {
        /// The predictive dimension.
        dimension: String,
        /// What is wrong.
        message: String,
    },
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
