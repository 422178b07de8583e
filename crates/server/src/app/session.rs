//! Signing in to the web app: an API key is exchanged for a session
//! cookie (`HttpOnly`, `SameSite=Strict`, `Secure` behind TLS, expiring);
//! every page checks the session and the key's current scope (a revoked
//! key ends its sessions within the key cache's 10 s), and every form that
//! changes something carries the session's token and comes from the same
//! origin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use leadscore_store::Scope;

use crate::app::error::PageError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "leadscore_session";

/// How long a session lasts without signing in again (8 hours).
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// Most sessions held at once; past it, the oldest are ended.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The SHA-256 of the key it signed in with (the key itself is not kept).
    key_hash: String,
    /// The token its forms must carry.
    pub csrf: String,
    /// When it ends.
    expires: Instant,
}

/// A session checked for this request, with its key's current scope.
#[derive(Clone, Debug)]
pub struct Visitor {
    /// The session's token for forms.
    pub csrf: String,
    /// What its key may do now.
    pub scope: Scope,
}

impl Visitor {
    /// Whether the key may do what `needed` allows.
    pub fn may(&self, needed: Scope) -> bool {
        self.scope.allows(needed)
    }
}

/// The sessions of the running service (kept in memory: a restart signs
/// everyone out).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex.
fn token() -> Result<String, PageError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| PageError::internal(format!("no randomness for a session: {e}")))?;
    Ok(leadscore_store::hex(&bytes))
}

impl Sessions {
    /// Starts a session for a key; returns its token (the cookie's value).
    pub fn start(&self, key: &str) -> Result<String, PageError> {
        let id = token()?;
        let session = Session {
            key_hash: leadscore_store::key_hash(key),
            csrf: token()?,
            expires: Instant::now() + LIFETIME,
        };
        let mut map = self
            .map
            .lock()
            .map_err(|_| PageError::internal("session lock poisoned"))?;
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(id.clone(), session);
        Ok(id)
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(id);
        }
    }

    fn get(&self, id: &str) -> Option<Session> {
        let map = self.map.lock().ok()?;
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over TLS (through a proxy that says so).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that stores session `id` in the browser.
pub fn set_cookie(id: &str, tls: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if tls { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The signed-in visitor of a request, or the sign-in page for one that
/// is not (no cookie, an ended session, a revoked key).
pub async fn visitor(state: &AppState, headers: &HeaderMap) -> Result<Visitor, PageError> {
    let session = cookie(headers, COOKIE)
        .and_then(|id| state.sessions.get(id))
        .ok_or(PageError::SignIn)?;
    let scope = state
        .scope_of_hash(&session.key_hash)
        .await?
        .ok_or(PageError::SignIn)?;
    Ok(Visitor {
        csrf: session.csrf,
        scope,
    })
}

/// The visitor of a form that changes something: signed in, with the
/// session's token, from this site (the `Origin` header, when sent, names
/// this host), and with a key that may do `needed`.
pub async fn form_visitor(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
    needed: Scope,
) -> Result<Visitor, PageError> {
    let v = visitor(state, headers).await?;
    if !same_origin(headers) || !same_token(&v.csrf, csrf) {
        return Err(PageError::forbidden(
            "this form did not come from this site's page (sign in again and retry)",
        ));
    }
    if !v.may(needed) {
        return Err(PageError::forbidden(format!(
            "this key's scope is '{}'; this needs '{}'",
            v.scope.name(),
            needed.name()
        )));
    }
    Ok(v)
}

/// Whether the `Origin` header, if any, names the host the request was
/// sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    !host.is_empty() && origin_host == host
}

/// Compares two tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; leadscore_session=abc".parse().unwrap());
        h.append("cookie", "b=2".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn a_cross_site_origin_or_a_wrong_token_is_refused() {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:8080".parse().unwrap());
        assert!(
            same_origin(&h),
            "no Origin header: same-site browsers omit it"
        );
        h.insert("origin", "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert("origin", "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
        assert!(same_token("abcd", "abcd"));
        assert!(!same_token("abcd", "abce") && !same_token("abcd", "abc"));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_tls() {
        let c = set_cookie("t", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        assert!(set_cookie("t", true).ends_with("; Secure"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn sessions_start_and_end() {
        let s = Sessions::default();
        let id = s.start("lsk_1").unwrap();
        let got = s.get(&id).unwrap();
        assert_eq!(got.key_hash, leadscore_store::key_hash("lsk_1"));
        assert_eq!(got.csrf.len(), 64);
        s.end(&id);
        assert!(s.get(&id).is_none());
    }
}
