//! Contacts: upsert (merge or replace attributes), get (attributes and
//! score), delete (events and history too), and one contact's score with
//! its explanation.

use axum::Json;
use axum::extract::State;

use crate::extract::{P, Q};
use axum::http::{HeaderMap, StatusCode};
use leadscore_batch::output::json_line;
use leadscore_batch::rows::contact_from_json;
use leadscore_core::{Model, ScoreCard, Timestamp};
use leadscore_store::{Scope, Upsert};
use serde::Deserialize;

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{batch_reply, count, items, sort_items};
use leadscore_batch::fields::identifier;

/// The object `leadscore score` prints for a contact.
pub fn score_object(model: &Model, id: &str, card: &ScoreCard) -> serde_json::Value {
    let mut line = Vec::new();
    json_line(&mut line, model, id, card);
    serde_json::from_slice(&line).unwrap_or(serde_json::Value::Null)
}

/// `?replace=true`: the given attributes become the whole set.
#[derive(Deserialize)]
pub struct UpsertQuery {
    #[serde(default)]
    replace: bool,
}

/// Creates or updates contacts.
pub async fn upsert(
    State(state): State<AppState>,
    Q(q): Q<UpsertQuery>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<axum::response::Response, ApiError> {
    require(&state, &headers, Scope::Write).await?;
    let body = body.checked()?;
    let texts = items(&headers, &body)?;
    let mut sorted = sort_items(
        &texts,
        "contact",
        |text| {
            let row = contact_from_json(text)
                .map_err(|(field, message)| ("invalid_contact", field, message))?;
            identifier(&row.id, "id")
                .map_err(|(f, m)| ("invalid_contact", Some(f.to_owned()), m))?;
            Ok(row)
        },
        |row| &row.id,
    );
    let rows = sorted.take_rows();
    // `upsert_contacts` unmarks these contacts as visitors in the database.
    state.unmarked(rows.iter().map(|r| r.id.as_str()));
    let now = state.now();
    let replace = q.replace;
    let done = if rows.is_empty() {
        Vec::new()
    } else {
        state
            .with_store(move |s| Ok(s.upsert_contacts(rows, replace, now)?))
            .await?
    };
    let items = sorted.finish(done.into_iter().map(|what| match what {
        Upsert::Created => "created",
        Upsert::Updated => "updated",
        Upsert::Unchanged => "unchanged",
    }));
    let body = serde_json::json!({
        "created": count(&items, "created"),
        "updated": count(&items, "updated"),
        "unchanged": count(&items, "unchanged"),
        "rejected": count(&items, "rejected"),
        "items": items,
    });
    Ok(batch_reply(body, &items))
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::bad(
            "invalid_id",
            "a contact id is not empty",
            Some("path.id"),
        ));
    }
    identifier(id, "id").map_err(|(_, m)| ApiError::bad("invalid_id", m, Some("path.id")))?;
    Ok(())
}

/// A contact's attributes and current score.
pub async fn get(
    State(state): State<AppState>,
    P(id): P<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    check_id(&id)?;
    let now = state.now();
    state
        .read_contact(id, move |s, id| {
            let Some(attributes) = s.attributes(id)? else {
                return Err(leadscore_store::StoreError::UnknownContact(id.to_owned()).into());
            };
            let score = s.contact_score(id, now)?;
            Ok(Json(serde_json::json!({
                "id": id,
                "attributes": attributes,
                "score": score_object(s.model(), &score.id, &score.card),
            })))
        })
        .await
}

/// Erases a contact: attributes, events, scores and history.
pub async fn delete(
    State(state): State<AppState>,
    P(id): P<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    require(&state, &headers, Scope::Write).await?;
    check_id(&id)?;
    state
        .with_store(move |s| Ok(s.delete_contact(&id)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?as_of=RFC3339&explain=true`.
#[derive(Deserialize)]
pub struct ScoreQuery {
    as_of: Option<String>,
    #[serde(default)]
    explain: bool,
}

/// A contact's score at a time (default now), optionally with the
/// explanation `leadscore explain` gives.
pub async fn score(
    State(state): State<AppState>,
    P(id): P<String>,
    Q(q): Q<ScoreQuery>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    check_id(&id)?;
    let at = match &q.as_of {
        Some(t) => Timestamp::parse(t)
            .map_err(|e| ApiError::bad("invalid_time", e.to_string(), Some("query.as_of")))?,
        None => state.now(),
    };
    let explain = q.explain;
    state
        .read_contact(id, move |s, id| {
            let score = s.contact_score(id, at)?;
            let mut object = score_object(s.model(), &score.id, &score.card);
            if explain {
                let e = s.explain(id, at)?;
                object["explanation"] = serde_json::to_value(e).unwrap_or(serde_json::Value::Null);
            }
            Ok(Json(object))
        })
        .await
}
