//! Model versions: each `model set` stores the model text as the next
//! version, with the learned models of its predictive dimensions
//! (`model_files`) and its rule slots; the newest version is the current
//! model, checked inside every write transaction.

use leadscore_core::{Model, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Result, StoreError};
use crate::slots::Slots;
use crate::store::Store;

pub use leadscore_learn::predictor::ModelFile;

/// Attaches each predictive dimension's learned model from `files`.
pub fn attach_model_files(model: &mut Model, files: &[ModelFile]) -> Result<()> {
    leadscore_learn::predictor::attach_model_files(model, files).map_err(|e| match e {
        leadscore_learn::LearnError::Predictive { dimension, message } => {
            StoreError::Predictive { dimension, message }
        }
        other => StoreError::Predictive {
            dimension: String::new(),
            message: other.to_string(),
        },
    })
}

pub(crate) fn store_model_files(
    conn: &Connection,
    version: i64,
    files: &[ModelFile],
    model: &Model,
) -> Result<()> {
    for f in files {
        if model
            .dimensions
            .iter()
            .any(|d| d.id == f.dimension && d.predictive.is_some())
        {
            conn.execute(
                "INSERT INTO model_files(version, dimension, file, content) VALUES (?1, ?2, ?3, ?4)",
                params![version, f.dimension, f.file, f.content],
            )?;
        }
    }
    Ok(())
}

pub(crate) fn load_model_files(conn: &Connection, version: i64) -> Result<Vec<ModelFile>> {
    let mut stmt =
        conn.prepare("SELECT dimension, file, content FROM model_files WHERE version = ?1")?;
    let rows = stmt.query_map([version], |r| {
        Ok(ModelFile {
            dimension: r.get(0)?,
            file: r.get(1)?,
            content: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
/// One stored model version.
#[derive(Clone, Debug)]
pub struct ModelVersionRow {
    /// Database version number (1, 2, ...).
    pub version: i64,
    /// The model's name.
    pub name: String,
    /// `version =` inside the file.
    pub author_version: i64,
    /// When it was set.
    pub created_at: Timestamp,
}
/// Fails with [`StoreError::ModelChanged`] unless `held` is the database's
/// current model version. Called inside write transactions, so no other
/// connection can change it before the commit.
pub(crate) fn check_model(conn: &Connection, held: i64) -> Result<()> {
    let found = latest_model_version(conn)?;
    if found == held {
        Ok(())
    } else {
        Err(StoreError::ModelChanged { held, found })
    }
}

/// The newest stored model version (a cached statement: it runs before
/// every service request).
pub(crate) fn latest_model_version(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT max(version) FROM models")?
        .query_row([], |r| r.get(0))?)
}

pub(crate) fn current_model(conn: &Connection) -> Result<(Model, Slots, i64)> {
    let (version, text, slots): (i64, String, Option<String>) = conn.query_row(
        "SELECT version, toml, slots FROM models ORDER BY version DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut model = Model::from_toml(&text).map_err(|e| {
        StoreError::Corrupt(format!(
            "stored model version {version} no longer validates: {e}"
        ))
    })?;
    attach_model_files(&mut model, &load_model_files(conn, version)?)?;
    let slots = Slots::from_stored(slots.as_deref(), model.rules.len())?;
    Ok((model, slots, version))
}
impl Store {
    /// StoredContact model versions, oldest first.
    pub fn model_log(&self) -> Result<Vec<ModelVersionRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT version, name, author_version, created_at FROM models ORDER BY version",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ModelVersionRow {
                version: r.get(0)?,
                name: r.get(1)?,
                author_version: r.get(2)?,
                created_at: Timestamp(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The TOML text of a stored model version.
    pub fn model_text(&self, version: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT toml FROM models WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?)
    }
}
