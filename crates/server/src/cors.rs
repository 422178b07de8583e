//! CORS on the intake routes, so that browser libraries (Segment's
//! analytics.js, leadscore's own `/t.js`) can send straight from a
//! website's pages: a preflight (`OPTIONS`) is answered for any origin,
//! since the key on the request itself decides (an ingest key names the
//! origins it may be used from), and the answers carry
//! `Access-Control-Allow-Origin` for the origin asking. No other route
//! answers a preflight or carries CORS headers, so browsers keep other
//! sites from reading them.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether `path` is an intake route: one an ingest key may call (the
/// route table's scope `ingest`).
fn intake(path: &str) -> bool {
    crate::openapi::ROUTES
        .iter()
        .any(|r| r.path == path && r.scope == Some("ingest"))
}

/// Headers a page may send on an intake call.
const ALLOWED_HEADERS: &str =
    "authorization, content-type, content-encoding, x-api-key, x-request-id";

/// Seconds a browser may keep a preflight's answer.
const MAX_AGE_SECONDS: &str = "600";

/// Answers preflights of the intake routes and adds CORS headers to their
/// answers (see the module's documentation).
pub(crate) async fn cors(request: Request, next: Next) -> Response {
    if !intake(request.uri().path()) {
        return next.run(request).await;
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = if request.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECONDS),
        );
        r
    } else {
        let mut r = next.run(request).await;
        r.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(crate::requests::REQUEST_ID),
        );
        r
    };
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}
