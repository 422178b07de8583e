//! # leadscore-store: the embedded lead database
//!
//! One SQLite file (WAL, `synchronous = FULL`) holding contacts, events,
//! live scores, band and stage history, and model versions. Scores read from
//! it are computed by the same core `evaluate` as `leadscore score`, from
//! the rule matches stored per contact, so both give the same numbers.
//!
//! - [`schema`]: the tables, their version, opening and refusing files.
//! - [`live`]: one contact's stored state and how it moves (events, data,
//!   model changes, time), with transitions and their causes.
//! - [`store`]: the handle: one contact's score, explanations, history,
//!   model versions, `tick`, deletion, `check`.
//! - [`listing`]: many contacts' scores: filters, and ranked lists that
//!   keep only the first N.
//! - [`import`]: contacts and events files in, in durable batches, with a
//!   rejects file.
//! - [`slots`]: the numbers stored rule matches are kept under, steady
//!   across model versions.
//! - [`inbox`]: the service's durable file of acknowledged events not
//!   stored yet, replayed when the database is opened.
//! - [`checkpoint`]: copying the write-ahead log into the file off the
//!   writer's path (the service).

pub mod checkpoint;
pub mod error;
pub mod event_cache;
pub mod history;
pub mod identity;
pub mod import;
pub mod inbox;
pub mod keys;
pub mod listing;
pub mod live;
mod model_change;
mod overlap;
pub mod schema;
pub mod segments;
pub mod slots;
pub mod store;
pub mod webhooks;

pub use error::{Result, StoreError};
pub use import::{ImportOptions, ImportSummary, Upsert};
pub use keys::{ApiKey, Scope};
pub use listing::{ContactScore, Filter, Placed, Ranked, ScoreFilter};
pub use store::{ModelChange, ModelFile, Store, TickSummary, TransitionRow, attach_model_files};
