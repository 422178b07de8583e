//! leadscore's model compiled into SQL: the contract's scores computed by
//! DuckDB, PostgreSQL or Spark where the contacts and events already are.
//!
//! [`compile`] turns a validated [`Model`] and the names of two tables into
//! one query (after a few `SET`-like statements an engine needs) returning
//! what `leadscore score --format csv` prints: `id`, one column per
//! dimension (points), `score` (0-100), `band`, `stage`, `disqualified`.
//! What an engine cannot compute exactly (a predictive dimension, a regular
//! expression its regex dialect cannot express) is refused with a
//! [`SqlError`], never approximated. See `docs/scaling.md`.

pub mod condition;
pub mod dialect;
mod query;
pub mod regex;

pub use dialect::Dialect;
use leadscore_core::{Model, Timestamp};

/// Why a model or an option cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The model has a learned dimension, which no SQL engine runs.
    #[error(
        "dimension {dimension:?} is predictive: its learned model cannot run in SQL (score it with `leadscore score` or the service)"
    )]
    Predictive {
        /// The dimension's id.
        dimension: String,
    },
    /// A regular expression the engine cannot express exactly.
    #[error("{place}: the regular expression {pattern:?} cannot be written for {dialect}: {why}")]
    Regex {
        /// The rule or stage holding it (`rule "exec-title"`).
        place: String,
        /// The pattern as written in the model.
        pattern: String,
        /// The engine.
        dialect: &'static str,
        /// What the engine lacks.
        why: String,
    },
    /// A string with a NUL character, which SQL text cannot hold.
    #[error("the value {value:?} holds a NUL character, which SQL text cannot hold")]
    Nul {
        /// The value.
        value: String,
    },
    /// A table or column name that cannot be quoted for the engine.
    #[error("the name {name:?} cannot be used: {why}")]
    Name {
        /// The name.
        name: String,
        /// Why.
        why: String,
    },
    /// A `--columns` assignment that is not `key=column` with a known key.
    #[error("--columns: {0}")]
    Columns(String),
}

/// The time scores are computed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// A fixed instant, written into the query.
    At(Timestamp),
    /// The engine's clock when the query runs (a query saved to run daily).
    Now,
}

/// Which columns of the two tables hold what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    /// The contacts table's id column (`contact`, default `id`).
    pub contact: String,
    /// A JSON (DuckDB, PostgreSQL) or map (Spark) column holding the
    /// attributes (`attributes`); without it, each attribute is the column
    /// of its name.
    pub attributes: Option<String>,
    /// The events table's event id column (`id`).
    pub id: String,
    /// The events table's contact id column (`contact_id`).
    pub contact_id: String,
    /// The events table's event type column (`type`).
    pub event_type: String,
    /// The events table's time stamp column (`timestamp`): a time stamp
    /// with zone, one without (read as UTC), or RFC 3339 text.
    pub timestamp: String,
    /// A JSON or map column holding the properties (`properties`);
    /// without it, each property is the column of its name.
    pub properties: Option<String>,
}

impl Default for Columns {
    fn default() -> Columns {
        Columns {
            contact: "id".into(),
            attributes: None,
            id: "id".into(),
            contact_id: "contact_id".into(),
            event_type: "type".into(),
            timestamp: "timestamp".into(),
            properties: None,
        }
    }
}

impl Columns {
    /// Applies `key=column,key=column` assignments (keys: `contact`,
    /// `attributes`, `id`, `contact_id`, `type`, `timestamp`,
    /// `properties`).
    pub fn assign(&mut self, text: &str) -> Result<(), SqlError> {
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((key, column)) = part.split_once('=') else {
                return Err(SqlError::Columns(format!(
                    "{part:?} is not key=column (keys: contact, attributes, id, contact_id, type, timestamp, properties)"
                )));
            };
            let column = column.trim().to_string();
            if column.is_empty() {
                return Err(SqlError::Columns(format!(
                    "{key}: the column name is empty"
                )));
            }
            match key.trim() {
                "contact" => self.contact = column,
                "attributes" => self.attributes = Some(column),
                "id" => self.id = column,
                "contact_id" => self.contact_id = column,
                "type" => self.event_type = column,
                "timestamp" => self.timestamp = column,
                "properties" => self.properties = Some(column),
                other => {
                    return Err(SqlError::Columns(format!(
                        "unknown key {other:?} (keys: contact, attributes, id, contact_id, type, timestamp, properties)"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What to compile for.
#[derive(Clone, Debug)]
pub struct Options {
    /// The engine.
    pub dialect: Dialect,
    /// The contacts table (`schema.table` allowed).
    pub contacts_table: String,
    /// The events table.
    pub events_table: String,
    /// Its columns.
    pub columns: Columns,
    /// The as-of time.
    pub as_of: AsOf,
}

/// The SQL script (statements, then the query, each ending in `;`) that
/// scores every contact of `options.contacts_table` as the contract says.
pub fn compile(model: &Model, options: &Options) -> Result<String, SqlError> {
    if let Some(d) = model.dimensions.iter().find(|d| d.predictive.is_some()) {
        return Err(SqlError::Predictive {
            dimension: d.id.clone(),
        });
    }
    query::Query::new(model, options).write()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dialect: Dialect) -> Options {
        Options {
            dialect,
            contacts_table: "crm.contacts".into(),
            events_table: "events".into(),
            columns: Columns::default(),
            as_of: AsOf::Now,
        }
    }

    #[test]
    fn a_predictive_dimension_is_refused() {
        let model = Model::from_toml(
            "[[dimension]]\nid = \"likely\"\nkind = \"predictive\"\nmodel = \"m.json\"\n[[band]]\nid = \"all\"\nmin_score = 0\n",
        )
        .unwrap();
        let err = compile(&model, &options(Dialect::DuckDb)).unwrap_err();
        assert!(matches!(err, SqlError::Predictive { .. }), "{err}");
    }

    #[test]
    fn columns_are_assigned_by_key() {
        let mut c = Columns::default();
        c.assign("id=event_id, contact_id=lead,timestamp=at,properties=props")
            .unwrap();
        assert_eq!(c.id, "event_id");
        assert_eq!(c.contact_id, "lead");
        assert_eq!(c.timestamp, "at");
        assert_eq!(c.properties.as_deref(), Some("props"));
        assert!(c.assign("colour=x").is_err());
        assert!(c.assign("id").is_err());
        assert!(c.assign("id=").is_err());
    }

    #[test]
    fn model_values_and_names_are_quoted() {
        let model = Model::from_toml(
            "[[dimension]]\nid = \"fit\\\"x\"\n[[band]]\nid = \"hot'; --\"\nmin_score = 0\n[[rule]]\nid = \"r\"\ndimension = \"fit\\\"x\"\npoints = 1\nwhen = { attribute = \"ti\\\"tle\", equals = \"'); DROP TABLE events; --\" }\n",
        )
        .unwrap();
        let sql = compile(&model, &options(Dialect::DuckDb)).unwrap();
        assert!(sql.contains("'''); drop table events; --'"), "{sql}");
        assert!(sql.contains("\"ti\"\"tle\""));
        assert!(sql.contains("AS \"fit\"\"x\""));
        assert!(sql.contains("'hot''; --'"));
        assert!(sql.contains("FROM \"crm\".\"contacts\""));
    }
}
