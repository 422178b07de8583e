//! The calls websites already send: Segment-style `track`, `page`,
//! `identify` and `batch` (as RudderStack also accepts), so a site's
//! existing tracking feeds leadscore unchanged.
//!
//! - `messageId` is the event id (a retried call is a duplicate, not a
//!   second event); `userId`, or else `anonymousId`, is the contact;
//!   `event` is the type (`page` calls are `page_view`); `properties` become
//!   properties and `traits` attributes, nested objects flattened with dots
//!   (`address.city`); `timestamp` is when (default: now).
//! - `identify` with both `userId` and `anonymousId` joins the anonymous
//!   visitor's history to the contact.
//! - Other fields (`context`, `integrations`, `sentAt`...) are ignored, as
//!   those tools send many.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use leadscore_batch::fields::identifier;
use leadscore_batch::rows::{ContactRow, EventRow};
use leadscore_core::Timestamp;
use leadscore_store::Scope;
use serde_json::{Map, Value};

use crate::auth::require;
use crate::error::ApiError;

use crate::events::check_event;
use crate::state::AppState;
use crate::wire::{ItemResult, MAX_BATCH, MAX_ID};

/// Flattens an object into text values (`a.b` for nested keys; arrays as
/// their JSON; null left out).
fn flatten(prefix: &str, object: &Map<String, Value>, out: &mut Vec<(String, String)>) {
    for (k, v) in object {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => out.push((key, s.clone())),
            Value::Object(o) => flatten(&key, o, out),
            other => out.push((key, other.to_string())),
        }
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

enum Call {
    Event(EventRow),
    Identify {
        user: String,
        anonymous: Option<String>,
        traits: Vec<(String, String)>,
    },
}

/// Reads one message; `kind` is the call's type when the route says it.
fn read(
    message: &Value,
    kind: Option<&str>,
    now: Timestamp,
) -> Result<Call, (Option<String>, String)> {
    let Value::Object(m) = message else {
        return Err((None, "a message is a JSON object".into()));
    };
    let kind = kind
        .map(str::to_owned)
        .or_else(|| m.get("type").and_then(Value::as_str).map(str::to_owned))
        .ok_or((
            Some("type".to_owned()),
            "missing: track, page or identify".to_owned(),
        ))?;
    let user = text(m.get("userId"));
    let anonymous = text(m.get("anonymousId"));
    for (field, value) in [("userId", &user), ("anonymousId", &anonymous)] {
        if let Some(v) = value {
            if v.len() > MAX_ID {
                return Err((
                    Some(field.to_owned()),
                    format!("longer than {MAX_ID} bytes"),
                ));
            }
            identifier(v, field).map_err(|(f, m)| (Some(f.to_owned()), m))?;
        }
    }
    let object = |name: &str| match m.get(name) {
        Some(Value::Object(o)) => Ok(Some(o)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err((Some(name.to_owned()), "must be an object".to_owned())),
    };
    match kind.as_str() {
        "identify" => {
            let user = user.ok_or((
                Some("userId".to_owned()),
                "identify needs a userId".to_owned(),
            ))?;
            let mut traits = Vec::new();
            if let Some(t) = object("traits")? {
                flatten("", t, &mut traits);
            }
            Ok(Call::Identify {
                user,
                anonymous,
                traits,
            })
        }
        "track" | "page" => {
            let contact = user.or(anonymous).ok_or((
                Some("userId".to_owned()),
                "needs a userId or an anonymousId".to_owned(),
            ))?;
            let id = text(m.get("messageId")).ok_or((
                Some("messageId".to_owned()),
                "missing: it is the event id that makes a retried call count once".to_owned(),
            ))?;
            let event_type = if kind == "page" {
                "page_view".to_owned()
            } else {
                text(m.get("event")).ok_or((
                    Some("event".to_owned()),
                    "missing: the event's name".to_owned(),
                ))?
            };
            let at = match m.get("timestamp").and_then(Value::as_str) {
                Some(t) => Timestamp::parse(t)
                    .map_err(|e| (Some("timestamp".to_owned()), e.to_string()))?,
                None => now,
            };
            let mut properties = Vec::new();
            if let Some(p) = object("properties")? {
                flatten("", p, &mut properties);
            }
            if kind == "page" {
                if let Some(name) = text(m.get("name")) {
                    properties.push(("name".into(), name));
                }
                let page_url = m
                    .get("context")
                    .and_then(|c| c.get("page"))
                    .and_then(|p| p.get("url"))
                    .and_then(Value::as_str);
                if !properties.iter().any(|(k, _)| k == "url")
                    && let Some(url) = page_url
                {
                    properties.push(("url".into(), url.to_owned()));
                }
            }
            let row = EventRow {
                id,
                contact_id: contact,
                event_type,
                at,
                properties,
            };
            check_event(&row).map_err(|(f, m)| (Some(f), m))?;
            Ok(Call::Event(row))
        }
        other => Err((
            Some("type".to_owned()),
            format!("{other:?} is not handled: use track, page or identify"),
        )),
    }
}

/// Stores the events gathered so far (one group commit) and fills in their
/// results.
async fn flush(
    state: &AppState,
    now: Timestamp,
    pending: &mut Vec<(usize, EventRow)>,
    results: &mut [Option<ItemResult>],
) -> Result<(), ApiError> {
    if pending.is_empty() {
        return Ok(());
    }
    let (idx, rows): (Vec<usize>, Vec<EventRow>) = std::mem::take(pending).into_iter().unzip();
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let flags = state.ingest.store(rows, now).await?;
    for ((i, id), fresh) in idx.into_iter().zip(ids).zip(flags) {
        results[i] = Some(ItemResult {
            index: i,
            id: Some(id),
            status: if fresh { "accepted" } else { "duplicate" },
            error: None,
        });
    }
    Ok(())
}

async fn run(
    state: &AppState,
    messages: Vec<Value>,
    kind: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    if messages.len() > MAX_BATCH {
        return Err(ApiError {
            status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            code: "batch_too_large",
            message: format!(
                "{} messages; at most {MAX_BATCH} per request",
                messages.len()
            ),
            field: Some("body.batch".into()),
        });
    }
    let now = state.now();
    let mut results: Vec<Option<ItemResult>> = Vec::new();
    let mut pending: Vec<(usize, EventRow)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        results.push(None);
        match read(message, kind, now) {
            Err((field, message)) => {
                results[i] = Some(ItemResult::rejected(
                    i,
                    None,
                    "invalid_message",
                    message,
                    field,
                ))
            }
            Ok(Call::Event(row)) => pending.push((i, row)),
            Ok(Call::Identify {
                user,
                anonymous,
                traits,
            }) => {
                // Earlier events first: they may be the visitor's history.
                flush(state, now, &mut pending, &mut results).await?;
                let (u, row) = (
                    user.clone(),
                    ContactRow {
                        id: user.clone(),
                        attributes: traits,
                    },
                );
                let joined = state
                    .with_store(move |s| {
                        s.upsert_contacts(vec![row], false, now)?;
                        match anonymous {
                            Some(a) => Ok(s.merge_contacts(&a, &u, now)?),
                            None => Ok(false),
                        }
                    })
                    .await?;
                results[i] = Some(ItemResult {
                    index: i,
                    id: Some(user),
                    status: if joined {
                        "identified_and_joined"
                    } else {
                        "identified"
                    },
                    error: None,
                });
            }
        }
    }
    flush(state, now, &mut pending, &mut results).await?;
    let items: Vec<ItemResult> = results.into_iter().flatten().collect();
    let rejected = items.iter().filter(|r| r.status == "rejected").count();
    Ok(Json(
        serde_json::json!({"success": rejected == 0, "rejected": rejected, "items": items}),
    ))
}

fn body_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad(
            "invalid_json",
            format!("the body is not JSON: {e}"),
            Some("body"),
        )
    })
}

/// `POST /v1/track`.
pub async fn track(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Write).await?;
    run(&state, vec![body_json(&body)?], Some("track")).await
}

/// `POST /v1/page`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Write).await?;
    run(&state, vec![body_json(&body)?], Some("page")).await
}

/// `POST /v1/identify`.
pub async fn identify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Write).await?;
    run(&state, vec![body_json(&body)?], Some("identify")).await
}

/// `POST /v1/batch`: `{"batch": [messages]}`, each with its `type`.
pub async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Write).await?;
    let Value::Object(mut m) = body_json(&body)? else {
        return Err(ApiError::bad(
            "invalid_json",
            "the body is an object with a \"batch\" array",
            Some("body"),
        ));
    };
    let Some(Value::Array(messages)) = m.remove("batch") else {
        return Err(ApiError::bad(
            "invalid_batch",
            "needs \"batch\": an array of messages",
            Some("body.batch"),
        ));
    };
    run(&state, messages, None).await
}
