//! What the event writer remembers between transactions: which contact a
//! contact id names (with the attribute values the model's rules read) and
//! the number the contact's next event gets. Without it, every event of a
//! service request costs two extra B-tree look-ups (about a quarter of the
//! writer's time, measured with perf).
//!
//! A cache is only as good as its invalidation. This one is trusted only
//! while nothing but the event writer has changed the database since it was
//! last used, which SQLite tells exactly, inside the writer's transaction:
//! - this connection's change counter (`sqlite3_total_changes`) still has
//!   the value it had after the writer's last commit: no other method of
//!   this [`crate::Store`] wrote (contact upserts, deletes, merges, model
//!   changes all count), except writes that are known to leave contacts'
//!   ids, attributes and events alone (ticks, webhook deliveries), which
//!   credit the counter through [`EventCache::credit`];
//! - `PRAGMA data_version` is unchanged: no other connection (a CLI import
//!   beside the service, say) committed anything.
//!
//! Otherwise the cache is emptied and refilled from the database as events
//! arrive. It is also emptied when a transaction fails, and when it grows
//! past [`MAX_CONTACTS`].

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;

/// Most contacts remembered; past it, the cache starts again empty. A
/// contact costs about 200 bytes with the starter model, so the cache
/// holds at most about 200 MB.
pub const MAX_CONTACTS: usize = 1_000_000;

/// A stored contact, as the event writer needs it.
pub(crate) struct Known {
    /// The contact's row id.
    pub(crate) rowid: i64,
    /// The attribute values the model's rules read, by vocabulary index.
    pub(crate) values: Vec<Option<Box<str>>>,
}

/// Contacts and event numbers remembered between event transactions.
#[derive(Default)]
pub(crate) struct EventCache {
    /// Contact id -> stored contact.
    pub(crate) known: HashMap<String, Known>,
    /// Contact row id -> the `seq` its next event gets.
    pub(crate) next_seq: HashMap<i64, i64>,
    /// This connection's change count and `data_version` when the cache
    /// was last brought up to date; `None`: never (trust nothing).
    mark: Option<(u64, i64)>,
}

impl EventCache {
    /// Empties the cache unless nothing else wrote since it was last used.
    /// Call inside the write transaction, before reading from the cache.
    pub(crate) fn revalidate(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        let current = (conn.total_changes(), version);
        if self.mark != Some(current) || self.known.len() > MAX_CONTACTS {
            self.known.clear();
            self.next_seq.clear();
        }
        self.mark = Some(current);
        Ok(())
    }

    /// Records that the writer's transaction committed: what the cache
    /// holds now matches the database.
    pub(crate) fn committed(&mut self, conn: &Connection) {
        if let Some((_, version)) = self.mark {
            self.mark = Some((conn.total_changes(), version));
        }
    }

    /// Forgets everything (after a failed transaction).
    pub(crate) fn clear(&mut self) {
        self.known.clear();
        self.next_seq.clear();
        self.mark = None;
    }

    /// Counts this connection's writes from `before` to `after` as harmless
    /// to the cache: only for writes that change no contact's id,
    /// attributes or events (ticks, webhook deliveries).
    pub(crate) fn credit(&mut self, before: u64, after: u64) {
        if let Some((changes, version)) = self.mark
            && changes == before
        {
            self.mark = Some((after, version));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.db");
        let a = Connection::open(&path).expect("open");
        a.pragma_update(None, "journal_mode", "wal").expect("wal");
        a.execute_batch("CREATE TABLE t(x)").expect("table");
        let b = Connection::open(&path).expect("open");
        (dir, a, b)
    }

    fn known(rowid: i64) -> Known {
        Known {
            rowid,
            values: vec![],
        }
    }

    fn filled(conn: &Connection) -> EventCache {
        let mut cache = EventCache::default();
        cache.revalidate(conn).expect("revalidate");
        cache.known.insert("c1".into(), known(1));
        cache.next_seq.insert(1, 7);
        cache.committed(conn);
        cache
    }

    #[test]
    fn survives_when_nothing_else_wrote() {
        let (_dir, a, _b) = db();
        let mut cache = filled(&a);
        cache.revalidate(&a).expect("revalidate");
        assert_eq!(cache.known.len(), 1);
        assert_eq!(cache.next_seq.get(&1), Some(&7));
    }

    #[test]
    fn emptied_by_a_write_on_the_same_connection() {
        let (_dir, a, _b) = db();
        let mut cache = filled(&a);
        a.execute("INSERT INTO t VALUES (1)", []).expect("insert");
        cache.revalidate(&a).expect("revalidate");
        assert!(cache.known.is_empty() && cache.next_seq.is_empty());
    }

    #[test]
    fn emptied_by_a_commit_of_another_connection() {
        let (_dir, a, b) = db();
        let mut cache = filled(&a);
        b.execute("INSERT INTO t VALUES (1)", []).expect("insert");
        cache.revalidate(&a).expect("revalidate");
        assert!(cache.known.is_empty());
    }

    #[test]
    fn credited_writes_keep_it_but_not_others_before_them() {
        let (_dir, a, _b) = db();
        let mut cache = filled(&a);
        let before = a.total_changes();
        a.execute("INSERT INTO t VALUES (1)", []).expect("insert");
        cache.credit(before, a.total_changes());
        cache.revalidate(&a).expect("revalidate");
        assert_eq!(cache.known.len(), 1);
        // An uncredited write, then a credited one: still emptied.
        a.execute("INSERT INTO t VALUES (2)", []).expect("insert");
        let before = a.total_changes();
        a.execute("INSERT INTO t VALUES (3)", []).expect("insert");
        cache.credit(before, a.total_changes());
        cache.revalidate(&a).expect("revalidate");
        assert!(cache.known.is_empty());
    }

    #[test]
    fn a_cleared_cache_trusts_nothing() {
        let (_dir, a, _b) = db();
        let mut cache = filled(&a);
        cache.clear();
        cache.known.insert("c2".into(), known(2));
        cache.revalidate(&a).expect("revalidate");
        assert!(cache.known.is_empty());
    }
}
