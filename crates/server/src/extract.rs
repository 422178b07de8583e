//! Extractors whose rejections are the API's JSON errors (axum's own answer
//! in plain text): the query string, path parameters, and a request body
//! of the media type its route takes.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The query string, read into `T`; a bad one is a 400 naming `query`.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|e| ApiError::bad("invalid_query", e.body_text(), Some("query")))
    }
}

/// Path parameters, read into `T`; a bad one is a 400 naming `path`.
pub struct P<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| P(v))
            .map_err(|e| ApiError::bad("invalid_path", e.body_text(), Some("path")))
    }
}

/// A request body with its media type checked against its route's
/// ([`crate::openapi::body_types`]). The check is kept until
/// [`Sent::checked`], which a handler calls after the key check, so that a
/// caller without a key learns nothing about the route.
pub struct Sent {
    bytes: Bytes,
    refused: Option<ApiError>,
}

impl Sent {
    /// The body, unchecked: only to find a key in it before the key check.
    pub fn peek(&self) -> &[u8] {
        &self.bytes
    }

    /// The body, or a 415 naming the types the route takes.
    pub fn checked(self) -> Result<Bytes, ApiError> {
        match self.refused {
            Some(e) => Err(e),
            None => Ok(self.bytes),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Sent {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let refused = content_type_refused(&request);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "unreadable_body", e.body_text()))?;
        Ok(Sent { bytes, refused })
    }
}

/// A route that takes a body takes it only as one of its media types
/// ([`crate::openapi::body_types`]): anything else, or none, is a 415
/// naming them.
fn content_type_refused(request: &Request) -> Option<ApiError> {
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str())?;
    let method = request.method().as_str().to_ascii_lowercase();
    let body = crate::openapi::route(&method, path).and_then(|r| r.body)?;
    let taken = crate::openapi::body_types(body);
    let sent = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let media = sent.as_deref().map(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if media.as_deref().is_some_and(|m| taken.contains(&m)) {
        return None;
    }
    let what = match &sent {
        Some(v) => format!("its Content-Type is {v:?}"),
        None => "it has no Content-Type".to_owned(),
    };
    Some(ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: format!(
            "{} {path} takes a body of type {}; {what}",
            request.method(),
            taken.join(", ")
        ),
        field: Some("header.content-type".into()),
    })
}
