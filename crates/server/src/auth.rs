//! API keys on requests: `Authorization: Bearer KEY`, `X-API-Key: KEY`, or
//! HTTP Basic with the key as user name (Segment-style clients).
//! No key (or an unknown one): 401; a key whose scope is too small: 403.

use axum::http::{HeaderMap, StatusCode};
use leadscore_store::Scope;

use crate::error::ApiError;
use crate::state::AppState;

/// Longest key text looked at.
const MAX_KEY: usize = 200;

/// Decodes standard base64 (with or without padding); `None` if invalid.
fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The key of a request: `Authorization: Bearer KEY`, `X-API-Key: KEY`,
/// or HTTP Basic with the key as user name (as Segment and RudderStack
/// send their write key).
pub(crate) fn key_from(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some(k) = v.strip_prefix("Bearer ") {
            return Some(k.trim().to_owned());
        }
        let basic = v.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(base64(basic.trim())?).ok()?;
        return Some(decoded.split(':').next().unwrap_or("").to_owned());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_owned())
}

/// The scope of the request's key; `None` when it carries none, or an
/// unknown or revoked one.
pub async fn scope_of_request(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Scope>, ApiError> {
    match key_from(headers).filter(|k| !k.is_empty() && k.len() <= MAX_KEY) {
        Some(key) => state.scope_of(&key).await,
        None => Ok(None),
    }
}

/// Checks that the request carries a key that allows `needed`
/// ([`Scope::allows`]: an ingest key only the intake routes), used from an
/// origin it names if it names any (a request with another `Origin` is a
/// 403; one without, from a program rather than a browser, is let be).
pub async fn require(state: &AppState, headers: &HeaderMap, needed: Scope) -> Result<(), ApiError> {
    require_key(state, key_from(headers), headers, needed).await
}

/// [`require`] with the key found elsewhere than the headers (a
/// Segment-style body's `writeKey`, as `sendBeacon` cannot set headers).
pub async fn require_key(
    state: &AppState,
    key: Option<String>,
    headers: &HeaderMap,
    needed: Scope,
) -> Result<(), ApiError> {
    let Some(key) = key.filter(|k| !k.is_empty() && k.len() <= MAX_KEY) else {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "an API key is needed: `Authorization: Bearer KEY` (create one with `leadscore keys create`)".into(),
            field: Some("header.authorization".into()),
        });
    };
    let Some(grant) = state.grant_of(&key).await? else {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "unknown or revoked API key".into(),
            field: Some("header.authorization".into()),
        });
    };
    if !grant.scope.allows(needed) {
        let message = if grant.scope == Scope::Ingest {
            "this key's scope is 'ingest': it only sends events, page views and identify calls"
                .to_owned()
        } else {
            format!(
                "this key's scope is '{}'; this request needs '{}'",
                grant.scope.name(),
                needed.name()
            )
        };
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message,
            field: Some("header.authorization".into()),
        });
    }
    let origin = headers.get("origin").and_then(|v| v.to_str().ok());
    if let Some(origin) = origin
        && !grant.origins.is_empty()
        && !grant.origins.iter().any(|o| o == origin)
    {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden_origin",
            message: format!(
                "this key may be used from {}; the request comes from {origin}",
                grant.origins.join(", ")
            ),
            field: Some("header.origin".into()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_bearer_api_key_or_basic() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer lsk_1".parse().unwrap());
        assert_eq!(key_from(&h).as_deref(), Some("lsk_1"));
        let mut h = HeaderMap::new();
        // base64("lsk_2:") = bHNrXzI6
        h.insert("authorization", "Basic bHNrXzI6".parse().unwrap());
        assert_eq!(key_from(&h).as_deref(), Some("lsk_2"));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "lsk_3".parse().unwrap());
        assert_eq!(key_from(&h).as_deref(), Some("lsk_3"));
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic !!!".parse().unwrap());
        assert_eq!(key_from(&h), None);
        assert_eq!(base64("aGVsbG8=").unwrap(), b"hello");
    }
}
