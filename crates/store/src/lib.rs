//! # leadscore-store: the embedded lead database
//!
//! One SQLite file (WAL, `synchronous = FULL`) holding contacts, events,
//! live scores, band and stage history, and model versions. Scores read from
//! it are computed by the same core `evaluate` as `leadscore score`, from
//! the rule matches stored per contact, so both give the same numbers.
//!
//! The API is [`Store`] (the handle that writes), [`StoreReader`] (one that
//! can only read) and the types they take and give, re-exported here; the
//! modules are private. Map of the crate:
//!
//! - Opening: `store` (the handle, SQLite settings), `schema` (tables,
//!   versions, additive migrations), `migrate` (migrations that rewrite
//!   data), `reader` (the read-only handle).
//! - A contact's state: `stored_contact` (its row decoded), `values`
//!   (stored attributes and properties as the model reads them),
//!   `matching` (events to rule matches; stored events read back),
//!   `slots` (the numbers stored matches name rules by), `live` (a live
//!   score computed), `transitions` (a live score written, with its band
//!   and stage changes and the webhook deliveries they owe).
//! - Writing: `ingest` (the one write path of events and contacts),
//!   `import` (files, in durable batches, with rejects), `event_cache`
//!   (what the writer remembers between transactions), `inbox` (the
//!   service's file of acknowledged events not stored yet), `checkpoint`
//!   (copying the log into the file off the writer's path).
//! - Changing and ageing: `model_versions`, `model_set` (a new model and
//!   everyone re-scored), `model_change` (what a change needs redone),
//!   `tick` (time passing), `check`.
//! - Reading: `contact` (one contact's score, explanation, history,
//!   deletion), `listing` (many contacts' scores, ranked lists),
//!   `segments`, `history` (whole records for learning), `training`
//!   (the point-in-time training table), `identity`
//!   (joining an anonymous contact; the transitions feed).
//! - The service's tables: `keys`, `webhooks`.

mod check;
mod checkpoint;
mod contact;
mod error;
mod event_cache;
mod history;
mod identity;
mod import;
mod inbox;
mod ingest;
mod keys;
mod listing;
mod live;
mod matching;
mod migrate;
mod model_change;
mod model_set;
mod model_versions;
mod overlap;
mod reader;
mod schema;
mod segments;
mod slots;
mod store;
mod stored_contact;
mod tick;
mod training;
mod transitions;
mod values;
mod visitors;
mod webhooks;

pub use checkpoint::{
    CheckpointPass, Checkpointer, LOG_LIMIT_BYTES, RESTART_BYTES, WRITER_BACKSTOP_BYTES,
};
pub use contact::{StoredEventRow, TransitionRow};
pub use error::{Result, StoreError};
pub use history::{ContactHistory, HistoryEvent};
pub use identity::FeedEntry;
pub use import::{ImportOptions, ImportSummary, Progress};
pub use inbox::{Inbox, InboxGroup, MAX_RECORD_BYTES, path_for as inbox_path, record_bytes};
pub use ingest::{PARALLEL_FROM, Upsert};
pub use keys::{ApiKey, Scope, check_origin, hex, key_hash};
pub use listing::{ContactScore, Filter, Placed, Ranked, ScoreFilter, TextSearch};
pub use live::HORIZON_DAYS;
pub use model_set::ModelChange;
pub use model_versions::{ModelFile, ModelVersionRow, attach_model_files};
pub use reader::StoreReader;
pub use schema::SCHEMA_VERSION;
pub use segments::{HadEvent, MAX_NAME as MAX_SEGMENT_NAME, SegmentDefinition};
pub use store::Store;
pub use tick::TickSummary;
pub use training::TrainingTable;
pub use webhooks::{Delivery, Due, KINDS as WEBHOOK_KINDS, MAX_ATTEMPTS, Webhook};
