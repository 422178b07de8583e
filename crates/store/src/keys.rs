//! API keys of the HTTP service: created with a scope, shown once, stored
//! only as a SHA-256 hash, revocable.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::store::Store;
use leadscore_core::Timestamp;

/// What a key may do; each scope includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read scores, contacts, leads, segments, transitions.
    Read,
    /// Also send events and contacts, delete contacts.
    Write,
    /// Also change the model, keys and webhooks.
    Admin,
}

impl Scope {
    /// The scope's name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Reads a scope name.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
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

fn row_key(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, String, i64, Option<i64>)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn to_key(
    (id, name, scope, prefix, created, revoked): (i64, String, String, String, i64, Option<i64>),
) -> Result<ApiKey> {
    Ok(ApiKey {
        id,
        name,
        scope: Scope::parse(&scope)
            .ok_or_else(|| StoreError::Corrupt(format!("api key {id}: scope {scope:?}")))?,
        prefix,
        created_at: Timestamp(created),
        revoked_at: revoked.map(Timestamp),
    })
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
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Corrupt(format!("no randomness for a key: {e}")))?;
        let secret = hex(&bytes);
        let key = format!("lsk_{secret}");
        let prefix: String = key.chars().take(10).collect();
        self.conn.execute(
            "INSERT INTO api_keys(name, scope, hash, prefix, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, scope.name(), key_hash(&key), prefix, now.0],
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
            },
            key,
        ))
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> Result<Vec<ApiKey>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, scope, prefix, created_at, revoked_at FROM api_keys ORDER BY id",
        )?;
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
            .prepare_cached(
                "SELECT id, name, scope, prefix, created_at, revoked_at FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([hash], row_key)
            .optional()?;
        row.map(to_key).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
