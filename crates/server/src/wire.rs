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
/// Most bytes of request headers (names and values together). Larger heads
/// are answered 431 with the JSON error shape, naming the largest header.
/// Hyper closes a connection whose head passes about 400 KB before any of
/// our code runs (431, no body); this limit makes the answer the same
/// whatever the size and however the bytes arrive.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Checks the request head against [`MAX_HEADER_BYTES`].
pub fn check_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    let total: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if total <= MAX_HEADER_BYTES {
        return Ok(());
    }
    let largest = headers
        .iter()
        .max_by_key(|(name, value)| name.as_str().len() + value.len())
        .map(|(name, _)| format!("header.{}", name.as_str()));
    let mut e = ApiError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        format!("request headers take {total} bytes; at most {MAX_HEADER_BYTES} are accepted"),
    );
    e.field = largest;
    Err(e)
}

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

/// A batch's answer: 200 with `body` (its counts and per-item results), or,
/// when every item was rejected, 400 with the same body and an `error`
/// naming the first item's fault, so that a client reading only the status
/// sees the failure. A batch with some items taken keeps the 200.
pub fn batch_reply(mut body: serde_json::Value, items: &[ItemResult]) -> axum::response::Response {
    use axum::response::IntoResponse;
    let all_rejected = !items.is_empty() && items.iter().all(|r| r.status == "rejected");
    if !all_rejected {
        return axum::Json(body).into_response();
    }
    let first = items[0].error.as_ref();
    let why = first
        .and_then(|e| e["message"].as_str())
        .unwrap_or("rejected");
    body["error"] = serde_json::json!({
        "code": "all_rejected",
        "message": format!(
            "every item of the batch ({}) was rejected; the first: {why}",
            items.len()
        ),
        "field": first.map_or(serde_json::Value::Null, |e| e["field"].clone()),
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// A batch read item by item: the rows to store (with their positions in
/// the request) and, per item, its result once known (rejections are known
/// at once).
pub struct Sorted<R> {
    /// Rows to store, in request order.
    pub rows: Vec<R>,
    /// Each row's position in the request.
    positions: Vec<usize>,
    /// Each row's id.
    ids: Vec<String>,
    /// Per item, its result if already decided.
    results: Vec<Option<ItemResult>>,
}

/// Reads every item with `read` (an error is `(code, field, message)`);
/// the second item with an id already in the batch is rejected as
/// `duplicate_in_batch`, naming the first.
pub fn sort_items<R>(
    texts: &[&str],
    what: &str,
    read: impl Fn(&str) -> Result<R, (&'static str, Option<String>, String)>,
    id_of: impl Fn(&R) -> &str,
) -> Sorted<R> {
    let mut sorted = Sorted {
        rows: Vec::new(),
        positions: Vec::new(),
        ids: Vec::new(),
        results: Vec::with_capacity(texts.len()),
    };
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, text) in texts.iter().enumerate() {
        match read(text) {
            Err((code, field, message)) => {
                sorted
                    .results
                    .push(Some(ItemResult::rejected(i, None, code, message, field)));
            }
            Ok(row) => {
                let id = id_of(&row).to_owned();
                if let Some(first) = seen.get(&id) {
                    sorted.results.push(Some(ItemResult::rejected(
                        i,
                        Some(id.clone()),
                        "duplicate_in_batch",
                        format!("{what} id {id:?} is also item {first} of this batch"),
                        Some("id".into()),
                    )));
                } else {
                    seen.insert(id.clone(), i);
                    sorted.results.push(None);
                    sorted.positions.push(i);
                    sorted.ids.push(id);
                    sorted.rows.push(row);
                }
            }
        }
    }
    sorted
}

impl<R> Sorted<R> {
    /// Takes the rows to store, leaving the bookkeeping.
    pub fn take_rows(&mut self) -> Vec<R> {
        std::mem::take(&mut self.rows)
    }

    /// Every item's result, given each stored row's status (in row order).
    pub fn finish(mut self, statuses: impl IntoIterator<Item = &'static str>) -> Vec<ItemResult> {
        for ((i, id), status) in self.positions.into_iter().zip(self.ids).zip(statuses) {
            self.results[i] = Some(ItemResult {
                index: i,
                id: Some(id),
                status,
                error: None,
            });
        }
        self.results.into_iter().flatten().collect()
    }
}

/// How many items have `status`.
pub fn count(items: &[ItemResult], status: &str) -> usize {
    items.iter().filter(|r| r.status == status).count()
}
