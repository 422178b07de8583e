//! `POST /v1/events`: behaviour as it happens. The answer comes after the
//! batch is durably committed and says, per item, accepted, duplicate or
//! rejected with the reason.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use leadscore_batch::rows::{EventRow, event_from_json};
use leadscore_store::Scope;

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{ItemResult, MAX_ID, items};

/// Longest event type, in bytes.
const MAX_TYPE: usize = 128;

/// Checks one parsed event beyond its shape.
pub fn check_event(row: &EventRow) -> Result<(), (String, String)> {
    if row.id.len() > MAX_ID {
        return Err(("id".into(), format!("longer than {MAX_ID} bytes")));
    }
    if row.contact_id.len() > MAX_ID {
        return Err(("contact_id".into(), format!("longer than {MAX_ID} bytes")));
    }
    if row.event_type.len() > MAX_TYPE {
        return Err(("type".into(), format!("longer than {MAX_TYPE} bytes")));
    }
    Ok(())
}

/// Stores a batch of events.
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Write).await?;
    let texts = items(&headers, &body)?;
    let mut results: Vec<Option<ItemResult>> = Vec::with_capacity(texts.len());
    let mut rows = Vec::new();
    let mut positions = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, text) in texts.iter().enumerate() {
        match event_from_json(text) {
            Err((field, message)) => {
                results.push(Some(ItemResult::rejected(
                    i,
                    None,
                    "invalid_event",
                    message,
                    field,
                )));
            }
            Ok(row) => {
                if let Err((field, message)) = check_event(&row) {
                    results.push(Some(ItemResult::rejected(
                        i,
                        None,
                        "too_long",
                        message,
                        Some(field),
                    )));
                } else if let Some(first) = seen.get(&row.id) {
                    results.push(Some(ItemResult::rejected(
                        i,
                        Some(row.id.clone()),
                        "duplicate_in_batch",
                        format!("event id {:?} is also item {first} of this batch", row.id),
                        Some("id".into()),
                    )));
                } else {
                    seen.insert(row.id.clone(), i);
                    results.push(None);
                    positions.push(i);
                    rows.push(row);
                }
            }
        }
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let now = state.now();
    let stored = if rows.is_empty() {
        Vec::new()
    } else {
        state.ingest.store(rows, now).await?
    };
    let (mut accepted, mut duplicates) = (0u64, 0u64);
    for ((i, id), fresh) in positions.into_iter().zip(ids).zip(stored) {
        if fresh {
            accepted += 1;
        } else {
            duplicates += 1;
        }
        results[i] = Some(ItemResult {
            index: i,
            id: Some(id),
            status: if fresh { "accepted" } else { "duplicate" },
            error: None,
        });
    }
    let items: Vec<ItemResult> = results.into_iter().flatten().collect();
    let rejected = items.len() as u64 - accepted - duplicates;
    state.metrics.events(accepted, duplicates, rejected);
    Ok(Json(serde_json::json!({
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "items": items,
    })))
}
