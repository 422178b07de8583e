//! The database handle, [`Store`]: creating and opening a database (with
//! its migrations), the connection's SQLite settings, and keeping the
//! handle's model current when another connection sets a new one. What
//! the handle does lives beside it: [`crate::contact`], [`crate::listing`],
//! [`crate::import`], [`crate::ingest`], [`crate::model_set`],
//! [`crate::tick`], [`crate::check`].

use std::path::{Path, PathBuf};

use leadscore_core::{Model, Timestamp};
use rusqlite::{Connection, params};

use crate::error::{Result, StoreError};
use crate::model_versions::{
    ModelFile, attach_model_files, current_model, latest_model_version, store_model_files,
};
use crate::schema;
use crate::slots::Slots;

/// Page cache, in KiB, of a writer that commits many small groups (the
/// service's): 32 MiB. A commit that follows a page split walks every
/// bucket of the cache's hash table, which grows with the pages held, so
/// a small cache makes those commits cheaper; other pages come from the OS
/// page cache through the mapping (figures in `docs/performance.md`).
const SERVICE_CACHE_KIB: i64 = 32_768;

/// An open lead database.
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) model: Model,
    /// The numbers the current model's rule matches are stored under.
    pub(crate) slots: Slots,
    pub(crate) model_version: i64,
    pub(crate) migrated_from: Option<i64>,
    /// Contacts re-scored together by `model set`.
    pub(crate) model_chunk: usize,
    /// Contacts read, then scored, together when listing scores.
    pub(crate) list_batch: usize,
    /// What the event writer remembers between calls.
    pub(crate) event_cache: crate::event_cache::EventCache,
}

impl Store {
    /// Creates a database at `path` with a first model version.
    pub fn create(path: &Path, model_text: &str, now: Timestamp) -> Result<Store> {
        Store::create_with_files(path, model_text, &[], now)
    }

    /// Creates a database at `path` with a first model version whose
    /// predictive dimensions' learned models are `files`.
    pub fn create_with_files(
        path: &Path,
        model_text: &str,
        files: &[ModelFile],
        now: Timestamp,
    ) -> Result<Store> {
        let mut model = Model::from_toml(model_text)?;
        attach_model_files(&mut model, files)?;
        let mut conn = schema::create(path)?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO models(version, name, author_version, toml, created_at) VALUES (1, ?1, ?2, ?3, ?4)",
            params![model.name, model.version, model_text, now.0],
        )?;
        store_model_files(&tx, 1, files, &model)?;
        tx.commit()?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            slots: Slots::identity(model.rules.len()),
            model,
            model_version: 1,
            migrated_from: None,
            model_chunk: crate::model_set::MODEL_CHUNK,
            list_batch: crate::listing::LIST_BATCH,
            event_cache: Default::default(),
        })
    }

    /// Opens an existing database (migrating an older layout: see
    /// [`Store::migrated_from`]).
    pub fn open(path: &Path) -> Result<Store> {
        let (conn, migrated_from) = schema::open(path)?;
        let mut store = Store::from_connection(conn, path, migrated_from)?;
        if let Some(from) = migrated_from {
            store.migrate_data(from)?;
        }
        store.store_inbox()?;
        Ok(store)
    }

    /// Stores the events a stopped service acknowledged but had not
    /// stored yet (its inbox, [`crate::inbox`]), then empties the inbox.
    /// Nothing to do when there is no inbox or a running service owns it.
    fn store_inbox(&mut self) -> Result<()> {
        if !crate::inbox::path_for(&self.path).exists() {
            return Ok(());
        }
        let applied = schema::inbox_applied(&self.conn)?;
        let Some((mut inbox, groups)) = crate::inbox::Inbox::open(&self.path, applied)? else {
            return Ok(());
        };
        for g in groups.into_iter().filter(|g| g.seq > applied) {
            self.ingest_inbox(g.rows, g.now, g.seq)?;
        }
        if !inbox.is_empty() {
            inbox.clear()?;
        }
        Ok(())
    }

    /// The last inbox group the database holds (0: none), see
    /// [`Inbox`](crate::Inbox).
    pub fn inbox_applied(&self) -> Result<u64> {
        schema::inbox_applied(&self.conn)
    }

    /// A handle on an opened connection, with the database's current model.
    pub(crate) fn from_connection(
        conn: Connection,
        path: &Path,
        migrated_from: Option<i64>,
    ) -> Result<Store> {
        let (model, slots, model_version) = current_model(&conn)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            model,
            slots,
            model_version,
            migrated_from,
            model_chunk: crate::model_set::MODEL_CHUNK,
            list_batch: crate::listing::LIST_BATCH,
            event_cache: Default::default(),
        })
    }
    /// running service). Returns whether it did. The service calls it
    /// before every request; write methods call it themselves.
    pub fn sync_model(&mut self) -> Result<bool> {
        if latest_model_version(&self.conn)? == self.model_version {
            return Ok(false);
        }
        let (model, slots, version) = current_model(&self.conn)?;
        self.model = model;
        self.slots = slots;
        self.model_version = version;
        self.event_cache.clear();
        Ok(true)
    }

    /// Runs `write`, which checks the model version inside its transaction
    /// ([`check_model`]); if another connection changed the model, loads it
    /// and runs `write` once more.
    pub(crate) fn with_current_model<T>(
        &mut self,
        mut write: impl FnMut(&mut Store) -> Result<T>,
    ) -> Result<T> {
        self.sync_model()?;
        match write(self) {
            Err(StoreError::ModelChanged { .. }) => {
                self.sync_model()?;
                write(self)
            }
            other => other,
        }
    }

    /// The schema version the database was migrated from when it was
    /// opened, if it was.
    pub fn migrated_from(&self) -> Option<i64> {
        self.migrated_from
    }

    /// Sets the log size, in bytes, at which this connection's commits
    /// checkpoint by themselves (SQLite's default: 1 000 pages); raise it
    /// when a [`crate::checkpoint::Checkpointer`] runs beside the writer.
    pub fn set_autocheckpoint_bytes(&mut self, bytes: i64) -> Result<()> {
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages = bytes / page_size.max(512);
        self.conn.pragma_update(None, "wal_autocheckpoint", pages)?;
        Ok(())
    }

    /// Sets this handle's page cache, in KiB (256 MiB when opened).
    pub fn set_cache_kib(&mut self, kib: i64) -> Result<()> {
        self.conn.pragma_update(None, "cache_size", -kib)?;
        Ok(())
    }

    /// Sets the page cache for a writer that commits many small groups,
    /// as the service's does (32 MiB).
    pub fn set_service_cache(&mut self) -> Result<()> {
        self.set_cache_kib(SERVICE_CACHE_KIB)
    }

    /// Sets how many contacts `model set` re-scores at a time (default
    /// 50 000): memory holds one chunk's contacts and matches, and one chunk
    /// is scored while the one before is written. Results do not depend on
    /// it.
    pub fn set_model_chunk(&mut self, contacts: usize) {
        self.model_chunk = contacts.max(1);
    }

    /// Sets how many contacts listing reads, then scores, at a time
    /// (default 20 000; a ranked list also trims what it keeps once a
    /// batch more than twice its length is held). Results do not depend
    /// on it.
    pub fn set_list_batch(&mut self, contacts: usize) {
        self.list_batch = contacts.max(1);
    }

    /// The current model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The current model's database version number.
    pub fn model_version(&self) -> i64 {
        self.model_version
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of contacts and of events stored.
    pub fn counts(&self) -> Result<(u64, u64)> {
        let c: i64 = self
            .conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?;
        let e: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        Ok((c as u64, e as u64))
    }
    /// Whether commits wait for the disk (`synchronous = FULL`, the
    /// default) or not (`OFF`: only for measuring what the wait costs).
    pub fn set_durable(&mut self, durable: bool) -> Result<()> {
        self.conn
            .pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })?;
        Ok(())
    }

    /// Runs `write`, which must leave every contact's id, attributes and
    /// events as they are (live states, history, outbox), without emptying
    /// the event writer's cache.
    pub(crate) fn keeping_event_cache<T>(
        &mut self,
        write: impl FnOnce(&mut Store) -> Result<T>,
    ) -> Result<T> {
        let before = self.conn.total_changes();
        let out = write(self);
        let after = self.conn.total_changes();
        self.event_cache.credit(before, after);
        out
    }
}
