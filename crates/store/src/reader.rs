//! [`StoreReader`]: a handle that can only read, beside the one that
//! writes (the service's readers).

use std::path::Path;

use crate::error::StoreError;
use crate::schema;
use crate::store::Store;

/// A read-only handle on a database another handle writes. It lends the
/// database only as `&Store`, through [`StoreReader::snapshot`], and every
/// method of `&Store` reads: writing through it does not compile. (Its
/// connection is also opened `query_only`.)
///
/// ```
/// # fn f(reader: &mut leadscore_store::StoreReader) -> leadscore_store::Result<()> {
/// let version = reader.snapshot(|s| Ok::<_, leadscore_store::StoreError>(s.model_version()))?;
/// let rescored = reader.snapshot(|s| s.contact_score("c1", leadscore_core::Timestamp(0)))?;
/// # Ok(()) }
/// ```
///
/// ```compile_fail
/// # fn f(reader: &mut leadscore_store::StoreReader) {
/// reader.snapshot(|s| s.delete_contact("c1"));
/// # }
/// ```
///
/// ```compile_fail
/// # fn f(reader: &mut leadscore_store::StoreReader) {
/// reader.upsert_contacts(Vec::new(), false, leadscore_core::Timestamp(0));
/// # }
/// ```
pub struct StoreReader {
    store: Store,
}

impl StoreReader {
    /// Opens a reading handle: its reads never wait for the writer's
    /// transactions and see every committed one. The database must be
    /// current (opened once by [`Store::open`], which migrates).
    pub fn open(path: &Path) -> crate::Result<StoreReader> {
        Ok(StoreReader {
            store: Store::from_connection(schema::open_reader(path)?, path, None)?,
        })
    }

    /// Runs `read` on one consistent state of the database (one read
    /// transaction) under the model current in that state: the rows it
    /// reads agree with each other and with the model even while another
    /// connection writes.
    pub fn snapshot<T, E: From<StoreError>>(
        &mut self,
        read: impl FnOnce(&Store) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let store = &mut self.store;
        // A snapshot left open (its reader panicked) is let go first.
        let begin = if store.conn.is_autocommit() {
            "BEGIN DEFERRED"
        } else {
            "ROLLBACK; BEGIN DEFERRED"
        };
        store
            .conn
            .execute_batch(begin)
            .map_err(|e| E::from(StoreError::from(e)))?;
        let out = match store.sync_model() {
            Ok(_) => read(store),
            Err(e) => Err(e.into()),
        };
        // Nothing was written: ending the transaction only lets go of the
        // snapshot.
        let end = store.conn.execute_batch("ROLLBACK");
        let out = out?;
        end.map_err(|e| E::from(StoreError::from(e)))?;
        Ok(out)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }
}
