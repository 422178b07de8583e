//! `POST /v1/events`: behaviour as it happens. The answer comes after the
//! batch is durably committed and says, per item, accepted, duplicate or
//! rejected with the reason.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use leadscore_batch::fields::identifier;
use leadscore_batch::rows::{EventRow, event_from_json};
use leadscore_store::Scope;

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;

use crate::wire::{MAX_ID, count, items, sort_items};

/// Longest event type, in bytes.
const MAX_TYPE: usize = 128;

/// Checks one parsed event beyond its shape.
pub fn check_event(row: &EventRow) -> Result<(), (String, String)> {
    for (field, value, max) in [
        ("id", &row.id, MAX_ID),
        ("contact_id", &row.contact_id, MAX_ID),
        ("type", &row.event_type, MAX_TYPE),
    ] {
        if value.len() > max {
            return Err((field.into(), format!("longer than {max} bytes")));
        }
        identifier(value, field).map_err(|(f, m)| (f.into(), m))?;
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
    let mut sorted = sort_items(
        &texts,
        "event",
        |text| {
            let row = event_from_json(text)
                .map_err(|(field, message)| ("invalid_event", field, message))?;
            check_event(&row).map_err(|(field, message)| ("too_long", Some(field), message))?;
            Ok(row)
        },
        |row| &row.id,
    );
    let rows = sorted.take_rows();
    let now = state.now();
    let stored = if rows.is_empty() {
        Vec::new()
    } else {
        state.ingest.store(rows, now).await?
    };
    let items = sorted.finish(
        stored
            .into_iter()
            .map(|fresh| if fresh { "accepted" } else { "duplicate" }),
    );
    let (accepted, duplicates, rejected) = (
        count(&items, "accepted"),
        count(&items, "duplicate"),
        count(&items, "rejected"),
    );
    state
        .metrics
        .events(accepted as u64, duplicates as u64, rejected as u64);
    Ok(Json(serde_json::json!({
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "items": items,
    })))
}
