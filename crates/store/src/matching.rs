//! Events into rule matches: [`event_hits`] for an event being stored, and
//! the one reader of stored events for matching again ([`events_query`],
//! [`StoredEvent`], [`stored_event_hits`]), used to re-match a contact,
//! to explain it and by `model set`.

use leadscore_core::{Hit, Model, Timestamp, event_key, match_event};
use rusqlite::{CachedStatement, Connection};

use crate::error::Result;
use crate::stored_contact::event_range;
use crate::values::EventProperties;

/// The rule matches of one event, keyed by its [`event_key`].
pub(crate) fn event_hits(
    model: &Model,
    attributes: &[Option<Box<str>>],
    id: &str,
    event_type: &str,
    at: Timestamp,
    props: &EventProperties,
    out: &mut Vec<Hit<u64>>,
) {
    keyed_event_hits(model, attributes, event_key(id), event_type, at, props, out);
}

/// The rule matches of one event under any key (an [`event_key`], or the
/// id and type an explanation shows).
pub(crate) fn keyed_event_hits<K: Clone>(
    model: &Model,
    attributes: &[Option<Box<str>>],
    key: K,
    event_type: &str,
    at: Timestamp,
    props: &EventProperties,
    out: &mut Vec<Hit<K>>,
) {
    match_event(model, event_type, attributes, props, |target| {
        out.push(Hit {
            target,
            at,
            key: key.clone(),
        })
    });
}

/// One stored event, borrowed from its row.
pub(crate) struct StoredEvent<'r> {
    /// The contact's row id.
    pub contact: i64,
    /// The event id.
    pub id: &'r str,
    /// The event type.
    pub event_type: &'r str,
    /// When it happened.
    pub at: Timestamp,
    /// Its properties: a JSON object of text values.
    pub properties: &'r str,
}

impl<'r> StoredEvent<'r> {
    /// Reads a row of [`events_query`].
    pub(crate) fn from_row(r: &'r rusqlite::Row<'_>) -> Result<StoredEvent<'r>> {
        let text = |i: usize| -> Result<&'r str> {
            Ok(r.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?)
        };
        Ok(StoredEvent {
            contact: r.get(0)?,
            id: text(1)?,
            event_type: text(2)?,
            at: Timestamp(r.get(3)?),
            properties: text(4)?,
        })
    }
}

/// The statement that reads stored events in `seq` order (a contact's
/// events are one `seq` range, a chunk of contacts one range too): bound to
/// the range's two ends, then to `types` when given (the other types are
/// skipped by SQLite, unread). Rows are read with [`StoredEvent::from_row`].
pub(crate) fn events_query<'c>(
    conn: &'c Connection,
    types: Option<&[&str]>,
) -> Result<CachedStatement<'c>> {
    let filter = match types {
        Some(t) => format!(" AND type IN ({})", vec!["?"; t.len()].join(", ")),
        None => String::new(),
    };
    Ok(conn.prepare_cached(&format!(
        "SELECT contact, id, type, ts, properties FROM events \
         WHERE seq BETWEEN ? AND ?{filter} ORDER BY seq"
    ))?)
}

/// The rule matches of a stored event under `model`, keyed by `key`.
pub(crate) fn stored_event_hits<K: Clone>(
    model: &Model,
    attributes: &[Option<Box<str>>],
    event: &StoredEvent<'_>,
    key: K,
    out: &mut Vec<Hit<K>>,
) -> Result<()> {
    let props = EventProperties::from_json(&model.vocabulary, event.properties)?;
    keyed_event_hits(
        model,
        attributes,
        key,
        event.event_type,
        event.at,
        &props,
        out,
    );
    Ok(())
}

/// Calls `each` with every stored event of one contact (of the types in
/// `types`, or all), in `seq` order.
pub(crate) fn for_each_stored_event(
    conn: &Connection,
    rowid: i64,
    types: Option<&[&str]>,
    mut each: impl FnMut(&StoredEvent<'_>) -> Result<()>,
) -> Result<()> {
    let mut stmt = events_query(conn, types)?;
    let (lo, hi) = event_range(rowid);
    let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&lo, &hi];
    if let Some(t) = types {
        bound.extend(t.iter().map(|t| t as &dyn rusqlite::ToSql));
    }
    let mut rows = stmt.query(bound.as_slice())?;
    while let Some(r) = rows.next()? {
        each(&StoredEvent::from_row(r)?)?;
    }
    Ok(())
}

/// Re-matches all of a contact's stored events under `model` (after its
/// attributes or the model changed, or to check its stored matches).
pub(crate) fn rematch(
    conn: &Connection,
    model: &Model,
    rowid: i64,
    attributes: &[Option<Box<str>>],
) -> Result<Vec<Hit<u64>>> {
    let mut hits = Vec::new();
    let types = model.event_types();
    for_each_stored_event(conn, rowid, Some(&types), |e| {
        stored_event_hits(model, attributes, e, event_key(e.id), &mut hits)
    })?;
    Ok(hits)
}
