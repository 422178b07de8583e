//! `POST /v1/events`: behaviour as it happens. The answer comes after the
//! batch is durably committed and says, per item, accepted, duplicate or
//! rejected with the reason.

use axum::extract::State;
use axum::http::HeaderMap;
use leadscore_batch::fields::identifier;
use leadscore_batch::rows::{EventRow, event_from_json};
use leadscore_store::Scope;

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;

use crate::wire::{batch_reply, count, items, sort_items};

/// Checks one parsed event beyond its shape: its ids and type follow the
/// rules every way in follows ([`identifier`]).
pub fn check_event(row: &EventRow) -> Result<(), (String, String)> {
    for (field, value) in [
        ("id", &row.id),
        ("contact_id", &row.contact_id),
        ("type", &row.event_type),
    ] {
        identifier(value, field).map_err(|(f, m)| (f.into(), m))?;
    }
    Ok(())
}

/// Stores a batch of events.
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<axum::response::Response, ApiError> {
    require(&state, &headers, Scope::Ingest).await?;
    let body = body.checked()?;
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
    // Events sent here make their contacts known (see `Store::visit`).
    state
        .known(rows.iter().map(|r| r.contact_id.as_str()))
        .await?;
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
    let body = serde_json::json!({
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "items": items,
    });
    Ok(batch_reply(body, &items))
}
