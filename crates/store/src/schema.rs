//! The database layout, its version, and how a file is opened.
//!
//! One SQLite file in WAL mode with `synchronous = FULL`: a committed
//! transaction survives a crash or power loss. Times are i64 nanoseconds
//! since the epoch (UTC). `meta` records the schema version and the scoring
//! contract version; a file of another version is refused with a message
//! rather than misread.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{Result, StoreError};

/// Version of the table layout below (8: stored event keys are XXH3; 9:
/// every scored contact has a next check, band and stage are indexed; 10:
/// anonymous visitors are marked, ingest keys name origins; see `migrate`).
pub const SCHEMA_VERSION: i64 = 10;
/// The last version reached by adding to the layout ([`ADDED`]); the
/// versions after it rewrite data ([`crate::migrate`]).
pub(crate) const LAST_ADDED: i64 = 7;
/// Version of the scoring contract (`docs/scoring-model.md`) the stored
/// scores follow.
pub const SPEC_VERSION: i64 = 1;

const DDL: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE models (
    version INTEGER PRIMARY KEY,       -- 1, 2, ... in order of `model set`
    name TEXT NOT NULL,
    author_version INTEGER NOT NULL,   -- `version =` inside the file
    toml TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,            -- internal
    ext_id TEXT NOT NULL UNIQUE,       -- the contact id users see
    attributes TEXT NOT NULL,          -- JSON object of text values
    hits BLOB NOT NULL,                -- rule matches under the current model
    dims TEXT,                         -- live score: JSON array of dimension values
    score REAL,
    band TEXT,
    stage TEXT,
    disqualified INTEGER NOT NULL DEFAULT 0,
    scored_at INTEGER,                 -- time the live score is for
    next_check_at INTEGER              -- when time alone may change band or stage
);
CREATE INDEX contacts_next_check ON contacts(next_check_at) WHERE next_check_at IS NOT NULL;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,           -- contact << 32 | arrival number: a contact's
                                       -- events are one range, no index needed
    id TEXT NOT NULL UNIQUE,           -- event id: a repeat is a duplicate
    contact INTEGER NOT NULL,
    type TEXT NOT NULL,
    ts INTEGER NOT NULL,
    properties TEXT NOT NULL           -- JSON object of text values
);
CREATE TABLE transitions (
    seq INTEGER PRIMARY KEY,
    contact INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,                -- 'band' or 'stage'
    from_value TEXT,
    to_value TEXT,
    cause TEXT NOT NULL,               -- 'event', 'decay', 'model', 'data'
    detail TEXT,                       -- event id, model version, ...
    model_version INTEGER NOT NULL
);
CREATE INDEX transitions_contact ON transitions(contact, at);
";

/// Schema 2: the learned models kept with each model version.
const V2_MODEL_FILES: &str = "
CREATE TABLE model_files (              -- schema 2: learned models of predictive dimensions
    version INTEGER NOT NULL,          -- the model version they belong to
    dimension TEXT NOT NULL,
    file TEXT NOT NULL,                -- the file name the model gave
    content TEXT NOT NULL,             -- the file itself (a model keeps working without it)
    PRIMARY KEY (version, dimension)
);
";

/// Schema 3: the service's API keys.
const V3_API_KEYS: &str = "
CREATE TABLE api_keys (                -- schema 3: keys of the HTTP service
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,               -- 'read', 'write' or 'admin'
    hash TEXT NOT NULL UNIQUE,         -- SHA-256 of the key, hex; the key itself is never stored
    prefix TEXT NOT NULL,              -- its first characters, to tell keys apart
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
";

/// Schema 4: webhooks and their outbox, fed by a trigger on transitions
/// (until schema 6).
const V4_WEBHOOKS: &str = "
CREATE TABLE webhooks (                -- schema 4: subscriptions to transitions
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,              -- signs each body (HMAC-SHA256); shown once
    kinds TEXT NOT NULL,               -- ' band stage disqualified ' (the ones wanted, space-separated)
    segment TEXT,                      -- only contacts in this segment (checked when delivering)
    created_at INTEGER NOT NULL,
    removed_at INTEGER
);
CREATE TABLE outbox (                  -- one row per delivery owed: written with the transition
    seq INTEGER PRIMARY KEY,
    webhook INTEGER NOT NULL,
    contact TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- 'pending', 'delivered', 'dead'
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0,      -- wall-clock nanoseconds of the next try
    last_error TEXT,
    delivered_at INTEGER
);
CREATE INDEX outbox_pending ON outbox(state, seq);
CREATE INDEX outbox_order ON outbox(webhook, contact, state, seq);
CREATE TRIGGER transitions_to_outbox AFTER INSERT ON transitions BEGIN
    INSERT INTO outbox(webhook, contact, body)
    SELECT w.id, c.ext_id, json_object(
        'type', CASE WHEN NEW.to_value = 'disqualified' THEN 'disqualified' ELSE NEW.kind || '_changed' END,
        'contact', c.ext_id, 'kind', NEW.kind, 'from', NEW.from_value, 'to', NEW.to_value,
        'at', NEW.at, 'cause', NEW.cause, 'detail', NEW.detail, 'model_version', NEW.model_version,
        'transition', NEW.seq)
    FROM webhooks w JOIN contacts c ON c.id = NEW.contact
    WHERE w.removed_at IS NULL
      AND (instr(w.kinds, ' ' || NEW.kind || ' ') > 0
           OR (NEW.to_value = 'disqualified' AND instr(w.kinds, ' disqualified ') > 0));
END;
";

/// Schema 5: segments.
const V5_SEGMENTS: &str = "
CREATE TABLE segments (                -- schema 5: saved, named filters
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,          -- JSON: band, stage, where, had_event
    created_at INTEGER NOT NULL
);
";

/// Schema 6: the outbox is written by the code that records a transition
/// (`transitions::record_transitions` calls `webhooks::owe_deliveries`),
/// no longer by a trigger: an INSERT that fires a trigger makes SQLite keep
/// a statement journal, a copy of every page the statement changes.
const V6_OUTBOX_BY_CODE: &str = "
DROP TRIGGER IF EXISTS transitions_to_outbox;
";

/// Schema 7: each model version keeps the numbers its rules' matches are
/// stored under (`crate::slots`), so adding or removing a rule does not
/// renumber every contact's stored matches. NULL (every version before):
/// a rule's number is its place.
const V7_RULE_SLOTS: &str = "
ALTER TABLE models ADD COLUMN slots TEXT;  -- schema 7: JSON, see crate::slots
";

/// Schema 9: band and stage are indexed, and `meta.scored_max` keeps the
/// latest `scored_at` stored, so a listing filtered by band or stage reads
/// only the contacts that may be in it (see `crate::listing`). Run by
/// [`create`] and by the migration to 9, which also gives every scored
/// contact a next check (`crate::migrate`).
pub(crate) const V9_CLASS_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS contacts_band ON contacts(band);
CREATE INDEX IF NOT EXISTS contacts_stage ON contacts(stage);
INSERT OR REPLACE INTO meta(key, value) SELECT 'scored_max', CAST(coalesce(max(scored_at), -9223372036854775808) AS TEXT) FROM contacts;
";

/// What each version adds to the one before: a new database runs them
/// all, an older one the ones it lacks (additive changes only).
const ADDED: [(i64, &str); 6] = [
    (2, V2_MODEL_FILES),
    (3, V3_API_KEYS),
    (4, V4_WEBHOOKS),
    (5, V5_SEGMENTS),
    (6, V6_OUTBOX_BY_CODE),
    (7, V7_RULE_SLOTS),
];

fn pragmas(conn: &Connection) -> Result<()> {
    // The write paths use a few dozen statements (eight for a live state
    // alone, by the columns that change); re-preparing them would cost more
    // than the writes.
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -262_144)?; // 256 MiB
    // Reads of a database larger than the cache come from the OS page cache
    // through a mapping, not a copy per page read (writes still go through
    // the WAL, so durability is unchanged).
    conn.pragma_update(None, "mmap_size", 16_i64 << 30)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        AUTOCHECKPOINT_BYTES / page_size.max(512),
    )?;
    Ok(())
}

/// Log size, in bytes, at which a commit copies the log into the database
/// file by itself: 64 MiB (SQLite's default, 1 000 pages, would make a bulk
/// import checkpoint at every commit). The service raises it further for its
/// writer, beside a checkpoint thread
/// ([`crate::checkpoint::WRITER_BACKSTOP_BYTES`]).
const AUTOCHECKPOINT_BYTES: i64 = 64 << 20;

/// Creates a new database file with the layout above.
pub fn create(path: &Path) -> Result<Connection> {
    if path.exists() {
        return Err(StoreError::Exists(path.to_path_buf()));
    }
    let mut conn = Connection::open(path)?;
    // 4 KiB pages (SQLite's default). Each event of a random contact
    // rewrites a few random pages (its row, its event range, the event-id
    // index), so a commit writes a few pages per event to the log: with
    // 16 KiB pages, which bulk imports prefer, the service's single-event
    // requests were slower and their p99 half again as long (measured in
    // docs/performance.md). A database keeps the page size it was made with.
    conn.pragma_update(None, "page_size", 4_096)?;
    pragmas(&conn)?;
    let tx = conn.transaction()?;
    tx.execute_batch(DDL)?;
    for (_, sql) in ADDED {
        tx.execute_batch(sql)?;
    }
    tx.execute_batch(V9_CLASS_INDEXES)?;
    tx.execute_batch(crate::visitors::V10_VISITORS)?;
    crate::keys::add_key_origins(&tx)?;
    for (k, v) in [
        ("schema_version", SCHEMA_VERSION.to_string()),
        ("spec_version", SPEC_VERSION.to_string()),
        (
            "created_by",
            format!("leadscore {}", env!("CARGO_PKG_VERSION")),
        ),
    ] {
        tx.execute("INSERT INTO meta(key, value) VALUES (?1, ?2)", (k, v))?;
    }
    tx.commit()?;
    Ok(conn)
}

/// Opens an existing database, checking that this program can read it and
/// adding what an older layout lacks; returns the schema version it was
/// migrated from, if it was. A database older than [`SCHEMA_VERSION`] is
/// left at [`LAST_ADDED`]: its data is rewritten by [`crate::migrate`],
/// which sets the last version in the same transaction.
pub fn open(path: &Path) -> Result<(Connection, Option<i64>)> {
    let conn = connect(path)?;
    let schema = check(&conn, path)?;
    pragmas(&conn)?;
    let mut conn = conn;
    let migrated = if schema < SCHEMA_VERSION {
        // Additive changes only, in one transaction: a crash leaves the old
        // layout, which migrates again next time.
        let tx = conn.transaction()?;
        for (version, sql) in ADDED {
            if schema < version {
                tx.execute_batch(sql)?;
            }
        }
        if schema < LAST_ADDED {
            set_version(&tx, LAST_ADDED)?;
        }
        tx.commit()?;
        Some(schema)
    } else {
        None
    };
    Ok((conn, migrated))
}

/// SQLite's page cache of a reading connection, in KiB (its reads mostly
/// come through the memory map; it commits nothing, so the walk that
/// limits the service writer's, `Store::set_cache_kib`, does not apply).
const READER_CACHE_KIB: i64 = 65_536;

/// Opens a connection that only reads (`PRAGMA query_only`: a write
/// through it fails) on a database another connection writes. It does not
/// migrate: a database of an older layout is refused, to be opened once
/// by [`open`] first.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = connect(path)?;
    let schema = check(&conn, path)?;
    if schema != SCHEMA_VERSION {
        return Err(StoreError::Schema {
            path: path.to_path_buf(),
            message: format!(
                "database schema version {schema} must be migrated to {SCHEMA_VERSION} before it can be read; open it with a command that writes first"
            ),
        });
    }
    pragmas(&conn)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// A connection to an existing file (no pragmas yet).
fn connect(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    Ok(Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}

/// Checks that `conn` holds a leadscore database this program can read
/// (schema no newer than ours, the same scoring contract); returns its
/// schema version.
fn check(conn: &Connection, path: &Path) -> Result<i64> {
    let schema_err = |message: String| StoreError::Schema {
        path: path.to_path_buf(),
        message,
    };
    let has_meta: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| schema_err(format!("not a leadscore database ({e})")))?;
    if has_meta.is_none() {
        return Err(schema_err(
            "not a leadscore database (no meta table)".into(),
        ));
    }
    let get = |key: &str| -> Result<i64> {
        let v: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        v.and_then(|v| v.parse().ok())
            .ok_or_else(|| schema_err(format!("meta has no valid {key}")))
    };
    let schema = get("schema_version")?;
    if schema > SCHEMA_VERSION {
        return Err(schema_err(format!(
            "database schema version {schema} is newer than this leadscore understands ({SCHEMA_VERSION}); upgrade leadscore"
        )));
    }
    if schema < 1 {
        return Err(schema_err(format!(
            "database schema version {schema} is older than any this leadscore can migrate"
        )));
    }
    let spec = get("spec_version")?;
    if spec != SPEC_VERSION {
        return Err(schema_err(format!(
            "scores were computed under scoring contract version {spec}, this leadscore implements {SPEC_VERSION}; re-create the database and import again"
        )));
    }
    Ok(schema)
}

/// Sets the schema version (inside a migration's transaction).
pub(crate) fn set_version(conn: &Connection, version: i64) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        [version.to_string()],
    )?;
    Ok(())
}

/// The last inbox group the database holds (0: none; see
/// [`crate::inbox`]).
pub fn inbox_applied(conn: &Connection) -> Result<u64> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'inbox_applied'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match v {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("meta inbox_applied is {v:?}"))),
    }
}

/// Records that the database holds every inbox group up to `seq` (inside
/// the transaction that stores them).
pub fn set_inbox_applied(conn: &Connection, seq: u64) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('inbox_applied', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value
         WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)",
        [seq.to_string()],
    )?;
    Ok(())
}
