//! # leadscore-batch: scoring from files
//!
//! Everything between files on disk and the pure core:
//! - [`format`](mod@format): which format a file is (CSV, NDJSON), how JSON scalars read,
//!   and the NDJSON line shapes.
//! - [`contacts`]: contacts files into a [`ContactTable`]; `contact_index`
//!   finds a contact by id.
//! - [`events`]: one events record into an [`events::EventRecord`].
//! - [`fields`]: the fields of an event record and their rules, shared by
//!   both readers of events files (and contact ids).
//! - [`pipeline`]: an events file streamed through worker threads in chunks.
//! - [`score`]: the batch scorer and the file-based explanation.
//! - [`output`]: JSON lines and CSV.
//! - [`rows`]: whole rows (every attribute and property) for database imports,
//!   with bad rows handed back as rejects.
//! - [`generate`]: deterministic synthetic contacts and events.
//!
//! Errors are [`InputError`]s naming file, line and field.

mod contact_index;
pub mod contacts;
pub mod error;
pub mod events;
pub mod fields;
pub mod format;
pub mod generate;
pub mod output;
pub mod pipeline;
mod records;
pub mod rows;
pub mod score;

pub use contacts::ContactTable;
pub use error::InputError;
pub use format::Format;
pub use output::OutputFormat;
pub use score::{BatchScores, BatchStats, explain_files, score_files};
