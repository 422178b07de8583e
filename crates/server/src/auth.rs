//! API keys on requests: `Authorization: Bearer KEY` or `X-API-Key: KEY`.
//! No key (or an unknown one): 401; a key whose scope is too small: 403.

use axum::http::{HeaderMap, StatusCode};
use leadscore_store::Scope;

use crate::error::ApiError;
use crate::state::AppState;

/// Longest key text looked at.
const MAX_KEY: usize = 200;

fn key_from(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Checks that the request carries a key with at least `needed`.
pub async fn require(state: &AppState, headers: &HeaderMap, needed: Scope) -> Result<(), ApiError> {
    let Some(key) = key_from(headers).filter(|k| !k.is_empty() && k.len() <= MAX_KEY) else {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "an API key is needed: `Authorization: Bearer KEY` (create one with `leadscore keys create`)".into(),
            field: Some("header.authorization".into()),
        });
    };
    match state.scope_of(key).await? {
        None => Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "unknown or revoked API key".into(),
            field: Some("header.authorization".into()),
        }),
        Some(scope) if scope < needed => Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!(
                "this key's scope is '{}'; this request needs '{}'",
                scope.name(),
                needed.name()
            ),
            field: Some("header.authorization".into()),
        }),
        Some(_) => Ok(()),
    }
}
