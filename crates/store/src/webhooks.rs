//! Webhook subscriptions and their durable outbox. [`owe_deliveries`]
//! writes one outbox row per subscription wanting it in the same
//! transaction as each band or stage transition, so an acknowledged change
//! is never without its delivery; the service's sender delivers them (at least once, in order
//! per contact), retrying with backoff and marking them dead after
//! [`MAX_ATTEMPTS`] tries.

use rusqlite::{OptionalExtension, params};

use crate::error::{Result, StoreError};
use crate::store::Store;
use leadscore_core::Timestamp;

/// Tries before a delivery is marked dead.
pub const MAX_ATTEMPTS: i64 = 8;

/// Outbox rows deleted per transaction by [`Store::prune_deliveries`] (so
/// pruning a large log never holds the writer for long).
const PRUNE_BATCH: i64 = 10_000;

/// Transition kinds a subscription can ask for.
pub const KINDS: [&str; 3] = ["band", "stage", "disqualified"];

/// Writes the deliveries owed for one recorded transition (row `seq` of
/// `transitions`, which the caller has just inserted in the same
/// transaction): one outbox row for each live subscription that wants its
/// kind (`band`, `stage`; `disqualified` when it moves to that stage), with
/// the body the service will POST. Subscriptions' segment filters are
/// checked when delivering, not here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn owe_deliveries(
    conn: &rusqlite::Connection,
    seq: i64,
    contact: i64,
    at: Timestamp,
    kind: &str,
    (from, to): (Option<&str>, Option<&str>),
    (cause, detail): (&str, Option<&str>),
    model_version: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox(webhook, contact, body)
         SELECT w.id, c.ext_id, json_object(
             'type', CASE WHEN ?5 = 'disqualified' THEN 'disqualified' ELSE ?3 || '_changed' END,
             'contact', c.ext_id, 'kind', ?3, 'from', ?4, 'to', ?5,
             'at', ?2, 'cause', ?6, 'detail', ?7, 'model_version', ?8, 'transition', ?9)
         FROM webhooks w JOIN contacts c ON c.id = ?1
         WHERE w.removed_at IS NULL
           AND (instr(w.kinds, ' ' || ?3 || ' ') > 0
                OR (?5 = 'disqualified' AND instr(w.kinds, ' disqualified ') > 0))",
    )?
    .execute(params![
        contact,
        at.0,
        kind,
        from,
        to,
        cause,
        detail,
        model_version,
        seq
    ])?;
    Ok(())
}

/// A subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// Its number.
    pub id: i64,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The transitions wanted (`band`, `stage`, `disqualified`).
    pub kinds: Vec<String>,
    /// Only contacts in this segment, if set (checked when delivering).
    pub segment: Option<String>,
    /// When it was added.
    pub created_at: Timestamp,
    /// When it was removed, if it was.
    pub removed_at: Option<Timestamp>,
}

/// One delivery owed or made.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Its position in the outbox.
    pub seq: i64,
    /// The subscription.
    pub webhook: i64,
    /// The contact it is about.
    pub contact: String,
    /// The JSON body sent.
    pub body: String,
    /// `pending`, `delivered`, `skipped` (the contact was not in the
    /// subscription's segment) or `dead`.
    pub state: String,
    /// Tries so far.
    pub attempts: i64,
    /// Wall-clock time of the next try (nanoseconds).
    pub next_at: i64,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When it was delivered, or skipped (wall clock, nanoseconds).
    pub delivered_at: Option<i64>,
}

/// A due delivery with where and how to send it.
#[derive(Clone, Debug)]
pub struct Due {
    /// The delivery.
    pub delivery: Delivery,
    /// The subscription's URL.
    pub url: String,
    /// The subscription's signing secret.
    pub secret: String,
    /// The subscription's segment filter.
    pub segment: Option<String>,
}

const DELIVERY_COLUMNS: &str = "o.seq, o.webhook, o.contact, o.body, o.state, o.attempts, o.next_at, o.last_error, o.delivered_at";

fn delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        seq: r.get(0)?,
        webhook: r.get(1)?,
        contact: r.get(2)?,
        body: r.get(3)?,
        state: r.get(4)?,
        attempts: r.get(5)?,
        next_at: r.get(6)?,
        last_error: r.get(7)?,
        delivered_at: r.get(8)?,
    })
}

impl Store {
    /// Subscribes `url` to transitions of `kinds`; returns the subscription
    /// and its signing secret (shown once).
    pub fn add_webhook(
        &mut self,
        url: &str,
        kinds: &[String],
        segment: Option<&str>,
        now: Timestamp,
    ) -> Result<(Webhook, String)> {
        if let Some(name) = segment
            && self.segment(name)?.is_none()
        {
            return Err(StoreError::Segment(format!("segment: no segment {name:?}")));
        }
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Corrupt(format!("no randomness for a secret: {e}")))?;
        let secret = format!("whsec_{}", crate::keys::hex(&bytes));
        let list = format!(" {} ", kinds.join(" "));
        self.conn.execute(
            "INSERT INTO webhooks(url, secret, kinds, segment, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![url, secret, list, segment, now.0],
        )?;
        let id = self.conn.last_insert_rowid();
        Ok((
            Webhook {
                id,
                url: url.to_owned(),
                kinds: kinds.to_vec(),
                segment: segment.map(str::to_owned),
                created_at: now,
                removed_at: None,
            },
            secret,
        ))
    }

    /// Every subscription, oldest first.
    pub fn webhooks(&self) -> Result<Vec<Webhook>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, url, kinds, created_at, removed_at, segment FROM webhooks ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let kinds: String = r.get(2)?;
            Ok(Webhook {
                id: r.get(0)?,
                url: r.get(1)?,
                kinds: kinds.split_whitespace().map(str::to_owned).collect(),
                created_at: Timestamp(r.get(3)?),
                removed_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                segment: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Removes a subscription; its undelivered deliveries are marked dead.
    /// False if there is no such live subscription.
    pub fn remove_webhook(&mut self, id: i64, now: Timestamp) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE webhooks SET removed_at = ?1 WHERE id = ?2 AND removed_at IS NULL",
            params![now.0, id],
        )?;
        tx.execute(
            "UPDATE outbox SET state = 'dead', last_error = 'subscription removed' WHERE webhook = ?1 AND state = 'pending'",
            [id],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Deliveries due at wall-clock time `now_ns`: pending, their time
    /// come, and the oldest pending one of their subscription and contact
    /// (so a contact's changes arrive in order). At most `limit`.
    pub fn due_deliveries(&self, now_ns: i64, limit: usize) -> Result<Vec<Due>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS}, w.url, w.secret, w.segment FROM outbox o JOIN webhooks w ON w.id = o.webhook
             WHERE o.state = 'pending' AND o.next_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.webhook = o.webhook AND p.contact = o.contact
                               AND p.state = 'pending' AND p.seq < o.seq)
             ORDER BY o.seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![now_ns, limit as i64], |r| {
            Ok(Due {
                delivery: delivery(r)?,
                url: r.get(9)?,
                secret: r.get(10)?,
                segment: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Records a delivery skipped because its contact is not in the
    /// subscription's segment.
    /// `now_ns` is the wall-clock time (nanoseconds).
    pub fn delivery_skipped(&mut self, seq: i64, now_ns: i64) -> Result<()> {
        self.keeping_event_cache(|s| {
            s.conn.execute(
                "UPDATE outbox SET state = 'skipped', delivered_at = ?1, last_error = 'not in the subscription''s segment' WHERE seq = ?2",
                params![now_ns, seq],
            )?;
            Ok(())
        })
    }

    /// Deletes from the delivery log the deliveries that are settled
    /// (delivered, or skipped for their segment) before `before_ns` (wall
    /// clock, nanoseconds; skipped rows of databases older than this
    /// method carry no time and go too). Pending and dead deliveries stay
    /// whatever their age: one is owed, the other needs a look. Deletes in
    /// transactions of 10 000 rows; returns how many went.
    pub fn prune_deliveries(&mut self, before_ns: i64) -> Result<u64> {
        self.keeping_event_cache(|s| {
            let mut stmt = s.conn.prepare_cached(
                "DELETE FROM outbox WHERE seq IN (
                    SELECT seq FROM outbox
                    WHERE state IN ('delivered', 'skipped') AND coalesce(delivered_at, 0) < ?1
                    ORDER BY seq LIMIT ?2)",
            )?;
            let mut total = 0;
            loop {
                let n = stmt.execute(params![before_ns, PRUNE_BATCH])?;
                total += n as u64;
                if n < PRUNE_BATCH as usize {
                    return Ok(total);
                }
            }
        })
    }

    /// Records a successful delivery.
    pub fn delivered(&mut self, seq: i64, now_ns: i64) -> Result<()> {
        self.keeping_event_cache(|s| s.delivered_at(seq, now_ns))
    }

    fn delivered_at(&mut self, seq: i64, now_ns: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?1, last_error = NULL WHERE seq = ?2",
            params![now_ns, seq],
        )?;
        Ok(())
    }

    /// Records a failed try: the next one at `next_ns`, or dead after
    /// [`MAX_ATTEMPTS`]. Returns whether it is now dead.
    pub fn delivery_failed(&mut self, seq: i64, error: &str, next_ns: i64) -> Result<bool> {
        self.keeping_event_cache(|s| s.record_failure(seq, error, next_ns))
    }

    fn record_failure(&mut self, seq: i64, error: &str, next_ns: i64) -> Result<bool> {
        let attempts: Option<i64> = self
            .conn
            .query_row("SELECT attempts FROM outbox WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?;
        let attempts = attempts.unwrap_or(0) + 1;
        let dead = attempts >= MAX_ATTEMPTS;
        self.conn.execute(
            "UPDATE outbox SET attempts = ?1, last_error = ?2, next_at = ?3, state = ?4 WHERE seq = ?5",
            params![attempts, error, next_ns, if dead { "dead" } else { "pending" }, seq],
        )?;
        Ok(dead)
    }

    /// A subscription's deliveries, newest first, at most `limit`.
    pub fn deliveries(&self, webhook: i64, limit: usize) -> Result<Vec<Delivery>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox o WHERE o.webhook = ?1 ORDER BY o.seq DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![webhook, limit as i64], delivery)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Deliveries waiting, for metrics.
    pub fn pending_deliveries(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    }
}
