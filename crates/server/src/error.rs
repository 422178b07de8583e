//! API errors: every failure is a JSON body `{"error": {"code", "message",
//! "field"}}` with a 4xx status for the caller's mistakes; a 500 only for
//! the server's own (a database failure), never for user input.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_store::StoreError;

/// An error answered to the caller.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`invalid_json`, `unknown_contact`...).
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
    /// The request part at fault (`query.as_of`, `body[3].timestamp`...).
    pub field: Option<String>,
}

impl ApiError {
    /// A 400 naming the field at fault.
    pub fn bad(code: &'static str, message: impl Into<String>, field: Option<&str>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    /// Any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::UnknownContact(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_contact",
                format!("no contact with id {id:?}"),
            ),
            StoreError::Filter(m) => ApiError::bad("invalid_filter", m, Some("query.where")),
            StoreError::Segment(m) => ApiError::bad("invalid_segment", m, Some("body")),
            StoreError::Model(m) => ApiError::bad("invalid_model", m.to_string(), Some("body")),
            StoreError::Key(m) => ApiError::bad("invalid_key", m, Some("body.origins")),
            // Models set twice by other processes during one request: the
            // request changed nothing and can be sent again.
            e @ StoreError::ModelChanged { .. } => {
                ApiError::new(StatusCode::CONFLICT, "model_changed", e.to_string())
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The service's own failures are logged with their cause, inside
        // the request's span (`crate::requests`); the caller's mistakes
        // are answered, not logged.
        if self.status.is_server_error() {
            tracing::error!(code = self.code, cause = %self.message, "request failed");
        }
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message, "field": self.field }
        });
        (self.status, Json(body)).into_response()
    }
}
