//! # leadscore-core: what a lead score means
//!
//! The pure core of leadscore: it implements the scoring contract
//! (`docs/scoring-model.md`) and nothing else. It does no I/O and never
//! reads the clock: every caller passes the as-of time in.
//!
//! Map of the crate:
//! - [`timestamp`]: instants, RFC 3339 parsing and printing.
//! - [`model`]: the validated model (dimensions, weights, bands, stages, rules).
//! - [`validate`]: model text to [`Model`], or every problem with its place.
//! - [`condition`]: compiled `when` conditions and their evaluation.
//! - [`limits`]: per-rule caps on counted events (sliding windows).
//! - [`decay`]: fading of event points with a half-life.
//! - [`scoring`]: one contact's matched events to a [`ScoreCard`].
//! - [`explain`]: why a contact has its score, as text and JSON.
//! - [`timeline`]: when time alone will next change a contact's band or stage.
//! - [`predict`]: dimensions given by a learned model (the interface only).

pub mod condition;
pub mod decay;
pub mod explain;
pub mod limits;
pub mod model;
pub mod predict;
pub mod scoring;
pub mod timeline;
pub mod timestamp;
pub mod validate;

pub use explain::{EventKey, Explanation};
pub use model::{Model, Target};
pub use predict::{Predict, PredictFactor};
pub use scoring::{Hit, ScoreCard, Trace, evaluate, event_key, match_event};
pub use timestamp::Timestamp;
pub use validate::{ModelError, Problem};
