//! Each request observed: counted in the metrics and logged in one line
//! (method, route, status, latency, request id), inside a span carrying
//! the request id, so that whatever is logged while it is answered (an
//! error and its cause) names it. The id is the caller's `x-request-id`
//! when that is a short token, else one made here; the answer carries it
//! in `x-request-id`. Only the route's template is logged, never the path
//! itself, the query, a header or the body: keys, secrets and cookies
//! travel there.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::state::AppState;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// Longest request id taken from a caller, in bytes.
const MAX_ID_BYTES: usize = 64;

/// The caller's request id when it is 1 to 64 letters, digits, `-`, `_`
/// or `.`; otherwise a new one (16 hex digits).
fn request_id(request: &Request) -> String {
    let given = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_ID_BYTES
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    match given {
        Some(v) => v.to_owned(),
        None => {
            let mut bytes = [0u8; 8];
            if getrandom::fill(&mut bytes).is_err() {
                // A clock-based id is still unique enough to find a line.
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos() as u64;
                bytes = t.to_be_bytes();
            }
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// Counts, logs and tags one request (see the module's documentation).
pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!("request", id = %id);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .request(method.as_str(), &route, status, seconds);
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route = %route,
            status,
            latency_ms = (seconds * 1e4).round() / 10.0,
            "answered"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(id: Option<&str>) -> Request {
        let mut b = axum::http::Request::builder();
        if let Some(id) = id {
            b = b.header(REQUEST_ID, id);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_callers_token_is_kept_anything_else_replaced() {
        assert_eq!(request_id(&with_id(Some("abc-123_x.y"))), "abc-123_x.y");
        for bad in [None, Some(""), Some("a b"), Some("x\"y")] {
            let id = request_id(&with_id(bad));
            assert_eq!(id.len(), 16, "{bad:?}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        let long = "a".repeat(65);
        assert_ne!(request_id(&with_id(Some(&long))), long);
    }
}
