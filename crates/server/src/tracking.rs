//! The calls websites already send: Segment-style `track`, `page`,
//! `identify` and `batch` (as RudderStack also accepts), so a site's
//! existing tracking feeds leadscore unchanged.
//!
//! - `messageId` is the event id (a retried call is a duplicate, not a
//!   second event); `userId`, or else `anonymousId`, is the contact;
//!   `event` is the type (`page` calls are `page_view`); `properties` become
//!   properties and `traits` attributes (also read from `context.traits`,
//!   where RudderStack's libraries put them), nested objects flattened with
//!   dots (`address.city`); `timestamp` is when (default: now).
//! - `identify` with both `userId` and `anonymousId` joins the anonymous
//!   visitor's history to the contact, when the `anonymousId` names an
//!   anonymous visitor: a contact only ever seen through calls that named
//!   no `userId`. A known contact is never merged away.
//! - Other fields (`context`, `integrations`, `sentAt`...) are ignored, as
//!   those tools send many.

use axum::extract::State;
use axum::http::HeaderMap;
use leadscore_batch::fields::identifier;
use leadscore_batch::rows::{ContactRow, EventRow};
use leadscore_core::Timestamp;
use leadscore_store::Scope;
use serde_json::{Map, Value};

use crate::auth::{key_from, require_key};
use crate::error::ApiError;

use crate::events::check_event;
use crate::state::AppState;
use crate::wire::{ItemResult, MAX_BATCH};

/// The tracking snippet for websites, served at `/t.js`.
const SNIPPET: &str = include_str!("assets/t.js");

/// `GET /t.js`: the tracking snippet (see `assets/t.js`): page views with
/// an anonymous id in a first-party cookie, `identify`, `track`, a consent
/// switch and Do Not Track, sent to the Segment-style routes with an
/// ingest key.
pub async fn snippet() -> impl axum::response::IntoResponse {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
        ],
        SNIPPET,
    )
}

/// Refuses a flattened name past the limit every way in follows
/// ([`leadscore_batch::fields::name`]), naming it.
fn names(pairs: &[(String, String)], part: &str) -> Result<(), (Option<String>, String)> {
    for (k, _) in pairs {
        leadscore_batch::fields::name(k, part).map_err(|m| (Some(format!("{part}.{k}")), m))?;
    }
    Ok(())
}

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
    /// A `track` or `page` call; `anonymous`: it named no `userId`, only
    /// an `anonymousId`.
    Event { row: EventRow, anonymous: bool },
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
            // RudderStack's libraries send the traits in `context.traits`
            // (Segment's at the top); the top-level ones win.
            let mut traits = Vec::new();
            if let Some(t) = m
                .get("context")
                .and_then(|c| c.get("traits"))
                .and_then(Value::as_object)
            {
                flatten("", t, &mut traits);
            }
            if let Some(t) = object("traits")? {
                let mut top = Vec::new();
                flatten("", t, &mut top);
                traits.retain(|(k, _)| !top.iter().any(|(name, _)| name == k));
                traits.extend(top);
            }
            names(&traits, "traits")?;
            Ok(Call::Identify {
                user,
                anonymous,
                traits,
            })
        }
        "track" | "page" => {
            let anonymous_only = user.is_none();
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
            names(&row.properties, "properties")?;
            Ok(Call::Event {
                row,
                anonymous: anonymous_only,
            })
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
) -> Result<axum::response::Response, ApiError> {
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
    let calls: Vec<_> = messages.iter().map(|m| read(m, kind, now)).collect();
    // Contacts named as users are known; contacts first seen through calls
    // naming only an anonymousId are visitors, the only ones `identify`
    // may join into a user (see `Store::visit`).
    let mut users = Vec::new();
    let mut visitors = Vec::new();
    for call in calls.iter().flatten() {
        match call {
            Call::Event {
                row,
                anonymous: true,
            } => visitors.push(row.contact_id.clone()),
            Call::Event {
                row,
                anonymous: false,
            } => users.push(row.contact_id.as_str()),
            // Its contact data unmarks it in the database (see below).
            Call::Identify { user, .. } => state.unmarked([user.as_str()]),
        }
    }
    state.known(users).await?;
    state.visit(visitors).await?;
    for (i, call) in calls.into_iter().enumerate() {
        results.push(None);
        match call {
            Err((field, message)) => {
                results[i] = Some(ItemResult::rejected(
                    i,
                    None,
                    "invalid_message",
                    message,
                    field,
                ))
            }
            Ok(Call::Event { row, .. }) => pending.push((i, row)),
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
                let visitor = anonymous.clone();
                let joined = state
                    .with_store(move |s| {
                        s.upsert_contacts(vec![row], false, now)?;
                        match anonymous {
                            Some(a) => Ok(s.merge_contacts(&a, &u, now)?),
                            None => Ok(false),
                        }
                    })
                    .await?;
                if let (true, Some(a)) = (joined, &visitor) {
                    state.unmarked([a.as_str()]);
                }
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
    let body = serde_json::json!({"success": rejected == 0, "rejected": rejected, "items": items});
    Ok(crate::wire::batch_reply(body, &items))
}

/// The key of a Segment-style call: from the headers, or else the body's
/// `writeKey` (what a page's `sendBeacon`, which sets no header, sends).
fn call_key(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    key_from(headers).or_else(|| {
        #[derive(serde::Deserialize)]
        struct Keyed {
            #[serde(rename = "writeKey")]
            write_key: Option<String>,
        }
        serde_json::from_slice::<Keyed>(body).ok()?.write_key
    })
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

/// A call's body as JSON, once its key (from the headers or the body's
/// `writeKey`) allows intake from the request's origin.
async fn authorized(
    state: &AppState,
    headers: &HeaderMap,
    body: crate::extract::Sent,
) -> Result<Value, ApiError> {
    require_key(
        state,
        call_key(headers, body.peek()),
        headers,
        Scope::Ingest,
    )
    .await?;
    body_json(&body.checked()?)
}

/// `POST /v1/track`.
pub async fn track(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<axum::response::Response, ApiError> {
    let message = authorized(&state, &headers, body).await?;
    run(&state, vec![message], Some("track")).await
}

/// `POST /v1/page`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<axum::response::Response, ApiError> {
    let message = authorized(&state, &headers, body).await?;
    run(&state, vec![message], Some("page")).await
}

/// `POST /v1/identify`.
pub async fn identify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<axum::response::Response, ApiError> {
    let message = authorized(&state, &headers, body).await?;
    run(&state, vec![message], Some("identify")).await
}

/// `POST /v1/batch`: `{"batch": [messages]}`, each with its `type`.
pub async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<axum::response::Response, ApiError> {
    let Value::Object(mut m) = authorized(&state, &headers, body).await? else {
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
