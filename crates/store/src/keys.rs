//! API keys of the HTTP service: created with a scope, shown once, stored
//! only as a SHA-256 hash, revocable.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::store::Store;
use leadscore_core::Timestamp;

/// What a key may do: read < write < admin, each including the one before;
/// `ingest`, for keys that live in web pages, only adds events, page views
/// and identify calls, and reads nothing ([`Scope::allows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Only send events, page views and identify calls (the intake routes),
    /// from the origins the key names, if it names any.
    Ingest,
    /// Read scores, contacts, leads, segments, transitions.
    Read,
    /// Also send events and contacts, delete contacts.
    Write,
    /// Also change the model, keys and webhooks.
    Admin,
}

impl Scope {
    /// Whether a key of this scope may make a request that needs
    /// `needed`: intake (`Ingest`) is open to ingest, write and admin keys;
    /// anything else to the scopes from `needed` up, never to an ingest key.
    pub fn allows(self, needed: Scope) -> bool {
        match needed {
            Scope::Ingest => self != Scope::Read,
            _ => self != Scope::Ingest && self >= needed,
        }
    }

    /// The scope's name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Reads a scope name.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// A stored key (never the key itself).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    /// Its number.
    pub id: i64,
    /// The name given at creation.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// Its first characters, to tell keys apart.
    pub prefix: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// The web origins (`https://www.example.com`) an ingest key may be
    /// used from; empty: any.
    pub origins: Vec<String>,
}

/// The SHA-256 of a key, hex: what the database keeps. Every request of
/// the service computes it once.
pub fn key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Bytes written as lower-case hexadecimal, two digits a byte: how keys,
/// webhook secrets, key hashes and signatures are spelled, without an
/// allocation per byte (every request hashes its key).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A key's stored columns: id, name, scope, prefix, created, revoked,
/// origins (JSON).
type KeyRow = (
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

/// The columns [`row_key`] reads.
const KEY_COLUMNS: &str = "id, name, scope, prefix, created_at, revoked_at, origins";

fn row_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_key((id, name, scope, prefix, created, revoked, origins): KeyRow) -> Result<ApiKey> {
    let origins = match origins {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("api key {id}: origins: {e}")))?,
        None => Vec::new(),
    };
    Ok(ApiKey {
        id,
        name,
        scope: Scope::parse(&scope)
            .ok_or_else(|| StoreError::Corrupt(format!("api key {id}: scope {scope:?}")))?,
        prefix,
        created_at: Timestamp(created),
        revoked_at: revoked.map(Timestamp),
        origins,
    })
}

/// Schema 10 gives API keys the web origins an ingest key may be used
/// from (JSON array; NULL: any). Added once, whatever path reaches 10.
pub(crate) fn add_key_origins(conn: &Connection) -> Result<()> {
    let has: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('api_keys') WHERE name = 'origins')",
        [],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute_batch("ALTER TABLE api_keys ADD COLUMN origins TEXT;")?;
    }
    Ok(())
}

/// Checks a web origin as browsers send it: `scheme://host[:port]`, with
/// scheme http or https and nothing after the host and port.
pub fn check_origin(origin: &str) -> std::result::Result<(), String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("origin {origin:?}: starts with https:// or http://"))?;
    let ok = !rest.is_empty()
        && rest.len() <= 253
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "origin {origin:?}: a scheme, a host and an optional port (https://www.example.com), no path"
        ))
    }
}

impl Store {
    /// Creates a key; returns it with the key text, which is not stored and
    /// cannot be shown again.
    pub fn create_key(
        &mut self,
        name: &str,
        scope: Scope,
        now: Timestamp,
    ) -> Result<(ApiKey, String)> {
        self.create_key_for(name, scope, &[], now)
    }

    /// [`Store::create_key`] of an ingest key usable only from these web
    /// origins (each checked by [`check_origin`]); only ingest keys name
    /// origins.
    pub fn create_key_for(
        &mut self,
        name: &str,
        scope: Scope,
        origins: &[String],
        now: Timestamp,
    ) -> Result<(ApiKey, String)> {
        if !origins.is_empty() && scope != Scope::Ingest {
            return Err(StoreError::Key("only an ingest key names origins".into()));
        }
        for o in origins {
            check_origin(o).map_err(StoreError::Key)?;
        }
        let origins_json = (!origins.is_empty())
            .then(|| serde_json::to_string(origins))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Corrupt(format!("no randomness for a key: {e}")))?;
        let secret = hex(&bytes);
        let key = format!("lsk_{secret}");
        let prefix: String = key.chars().take(10).collect();
        self.conn.execute(
            "INSERT INTO api_keys(name, scope, hash, prefix, created_at, origins) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, scope.name(), key_hash(&key), prefix, now.0, origins_json],
        )?;
        let id = self.conn.last_insert_rowid();
        Ok((
            ApiKey {
                id,
                name: name.to_owned(),
                scope,
                prefix,
                created_at: now,
                revoked_at: None,
                origins: origins.to_vec(),
            },
            key,
        ))
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> Result<Vec<ApiKey>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"))?;
        let rows = stmt
            .query_map([], row_key)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(to_key).collect()
    }

    /// Revokes the key with this number or name; false if there is none
    /// (or it was revoked already).
    pub fn revoke_key(&mut self, id_or_name: &str, now: Timestamp) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE api_keys SET revoked_at = ?1 WHERE revoked_at IS NULL AND (CAST(id AS TEXT) = ?2 OR name = ?2)",
            params![now.0, id_or_name],
        )?;
        Ok(n > 0)
    }

    /// The live (not revoked) key whose hash is `hash`.
    pub fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL"
            ))?
            .query_row([hash], row_key)
            .optional()?;
        row.map(to_key).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_keys_add_and_never_read() {
        use Scope::*;
        for s in [Ingest, Write, Admin] {
            assert!(s.allows(Ingest), "{s:?}");
        }
        assert!(!Read.allows(Ingest));
        for needed in [Read, Write, Admin] {
            assert!(!Ingest.allows(needed), "{needed:?}");
        }
        assert!(Admin.allows(Read) && Write.allows(Read) && !Read.allows(Write));
        assert!(check_origin("https://www.example.com").is_ok());
        assert!(check_origin("http://127.0.0.1:8080").is_ok());
        for bad in [
            "www.example.com",
            "https://x.com/path",
            "ftp://x",
            "https://",
            "https://a b",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_writes_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
    }

    #[test]
    fn a_key_hash_is_the_hex_sha256_of_the_key() {
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
