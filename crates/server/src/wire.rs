//! Request bodies of batches: a JSON array of objects, one JSON object, or
//! NDJSON (`Content-Type: application/x-ndjson`), each object exactly an
//! NDJSON import line. Items are handed on as text with their index.

use axum::http::{HeaderMap, StatusCode};
use serde_json::value::RawValue;

use crate::error::ApiError;

/// Most items in one request.
pub const MAX_BATCH: usize = 10_000;
/// Largest request body, in bytes.
pub const MAX_BODY: usize = 32 << 20;
/// Longest id (contact or event), in bytes.
pub const MAX_ID: usize = 256;

/// The items of a batch body, as JSON texts.
pub fn items<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Vec<&'a str>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad(
            "invalid_utf8",
            format!("the body is not UTF-8 (byte {})", e.valid_up_to()),
            Some("body"),
        )
    })?;
    let ndjson = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/x-ndjson") || v.starts_with("application/jsonl")
        });
    let items: Vec<&str> = if ndjson {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    } else {
        match text.trim_start().as_bytes().first() {
            Some(b'[') => {
                let raw: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
                    ApiError::bad(
                        "invalid_json",
                        format!("the body is not a JSON array of objects: {e}"),
                        Some("body"),
                    )
                })?;
                raw.into_iter().map(RawValue::get).collect()
            }
            Some(b'{') => {
                let raw: &RawValue = serde_json::from_str(text).map_err(|e| {
                    ApiError::bad(
                        "invalid_json",
                        format!("the body is not JSON: {e}"),
                        Some("body"),
                    )
                })?;
                vec![raw.get()]
            }
            _ => {
                return Err(ApiError::bad(
                    "invalid_json",
                    "the body must be a JSON object, a JSON array of objects, or NDJSON with Content-Type: application/x-ndjson",
                    Some("body"),
                ));
            }
        }
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "batch_too_large",
            message: format!("{} items; at most {MAX_BATCH} per request", items.len()),
            field: Some("body".into()),
        });
    }
    if items.is_empty() {
        return Err(ApiError::bad(
            "empty_batch",
            "the body holds no item",
            Some("body"),
        ));
    }
    Ok(items)
}

/// The outcome of one item of a batch.
#[derive(Debug, serde::Serialize)]
pub struct ItemResult {
    /// Its position in the request, from 0.
    pub index: usize,
    /// Its id, when it could be read.
    pub id: Option<String>,
    /// `accepted`, `duplicate`, `created`, `updated`, `unchanged` or
    /// `rejected`.
    pub status: &'static str,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

impl ItemResult {
    /// A rejected item, naming the field at fault.
    pub fn rejected(
        index: usize,
        id: Option<String>,
        code: &str,
        message: String,
        field: Option<String>,
    ) -> ItemResult {
        let field = Some(match field {
            Some(f) => format!("body[{index}].{f}"),
            None => format!("body[{index}]"),
        });
        ItemResult {
            index,
            id,
            status: "rejected",
            error: Some(serde_json::json!({"code": code, "message": message, "field": field})),
        }
    }
}
