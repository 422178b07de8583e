//! The pages that manage what the service keeps besides leads: segments
//! (write keys create, edit and delete them; everyone sees their members
//! and exports them), webhooks (admin: subscriptions and their delivery
//! log) and API keys (admin: create, shown once; revoke). Each form is
//! checked on the server for its session's token and its key's scope.

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::{Scope, SegmentDefinition};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::error::PageError;
use crate::app::fields::{encode, some};
use crate::app::layout;
use crate::app::session::{Visitor, form_visitor, visitor};
use crate::extract::P;
use crate::state::AppState;

/// Deliveries listed per webhook.
const DELIVERIES_SHOWN: usize = 50;

fn hidden_token(v: &Visitor) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

/// Runs a form's change `f` on the writing handle once the form passes
/// [`form_visitor`] for `needed`, then sends the browser to `back`.
pub async fn act<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    (csrf, needed): (&str, Scope),
    back: &str,
    f: impl FnOnce(&mut leadscore_store::Store) -> Result<T, leadscore_store::StoreError>
    + Send
    + 'static,
) -> Result<Response, PageError> {
    form_visitor(state, headers, csrf, needed).await?;
    state
        .with_store(move |s| Ok(f(s)?))
        .await
        .map_err(form_error)?;
    Ok(Redirect::to(back).into_response())
}

/// A page that shows a secret once (a new key, a webhook's signing
/// secret), with the way back.
fn shown_once(
    v: &Visitor,
    (title, nav): (&str, &str),
    intro: Markup,
    (id, value): (&str, &str),
) -> Response {
    let content = html! {
        h1 { (title) }
        p { (intro) }
        p { code id=(id) { (value) } }
        p { a href=(nav) { "Back" } }
    };
    layout::page(title, v, nav, content).into_response()
}

/// A store error met by a form: the reason, as a 400 page.
fn form_error(e: crate::error::ApiError) -> PageError {
    match PageError::from(e) {
        PageError::Status(status, m) if status.is_server_error() => PageError::internal(m),
        PageError::Status(_, m) => PageError::bad(m),
        other => other,
    }
}

/// `GET /segments`: every segment with its definition and member count.
pub async fn segments(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let v = visitor(&state, &headers).await?;
    let now = state.now();
    let all = state
        .read(move |s| {
            let mut out = Vec::new();
            for (name, def) in s.segments()? {
                let n = s.member_count(&def, now)?;
                out.push((name, def, n));
            }
            Ok(out)
        })
        .await?;
    let content = html! {
        h1 { "Segments" }
        @if all.is_empty() { p { "No segment yet." } } @else {
            table {
                thead { tr {
                    th scope="col" { "Segment" } th scope="col" { "Holds" } th scope="col" { "Members" }
                    th scope="col" { "Export" }
                    @if v.may(Scope::Write) { th scope="col" { "Delete" } }
                } }
                tbody {
                    @for (name, def, n) in &all {
                        tr {
                            th scope="row" { a href=(format!("/leads?segment={name}")) { (name) } }
                            td { (describe(def)) }
                            td class="num" { (n) }
                            td { a href=(format!("/segments/{name}.csv")) { "CSV" } }
                            @if v.may(Scope::Write) {
                                td {
                                    form method="post" action=(format!("/segments/{name}/delete")) {
                                        (hidden_token(&v))
                                        button type="submit" class="danger" aria-label=(format!("Delete segment {name}")) { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if v.may(Scope::Write) {
            form method="post" action="/segments" class="stacked" {
                h2 { "Create or replace a segment" }
                (hidden_token(&v))
                label for="name" { "Name" }
                input id="name" name="name" required pattern="[A-Za-z0-9_-]{1,64}";
                label for="band" { "Band (empty: any)" }
                input id="band" name="band";
                label for="stage" { "Stage (empty: any)" }
                input id="stage" name="stage";
                label for="where" { "Condition (empty: none)" }
                input id="where" name="where" placeholder=r#"{ attribute = "country", equals = "US" }"#;
                label for="had_event" { "Had an event of this type (empty: none)" }
                input id="had_event" name="had_event";
                label for="within_days" { "within this many days" }
                input id="within_days" name="within_days" inputmode="decimal" value="30";
                button type="submit" { "Save segment" }
            }
        }
    };
    Ok(layout::page("Segments", &v, "/segments", content).into_response())
}

fn describe(d: &SegmentDefinition) -> String {
    let mut parts = Vec::new();
    if let Some(b) = &d.band {
        parts.push(format!("band {b}"));
    }
    if let Some(s) = &d.stage {
        parts.push(format!("stage {s}"));
    }
    if let Some(w) = &d.condition {
        parts.push(format!("where {w}"));
    }
    if let Some(h) = &d.had_event {
        parts.push(format!(
            "a {} event in {} days",
            h.event_type, h.within_days
        ));
    }
    if parts.is_empty() {
        "every lead".into()
    } else {
        parts.join("; ")
    }
}

/// `GET /segments/{name}.csv`: the segment's members now, with the columns
/// of `leadscore score --format csv` (as `GET /v1/segments/{name}/export`).
pub async fn export_segment(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(file): P<String>,
) -> Result<Response, PageError> {
    visitor(&state, &headers).await?;
    let name = file
        .strip_suffix(".csv")
        .ok_or_else(|| PageError::not_found("no such page"))?
        .to_string();
    let now = state.now();
    let csv = state
        .read(move |s| {
            let def = s.segment(&name)?.ok_or_else(|| {
                leadscore_store::StoreError::Segment(format!("no segment {name:?}"))
            })?;
            let members = s.members(&def, now)?;
            Ok(leadscore_batch::output::csv_file(
                s.model(),
                members.iter().map(|c| (c.id.as_str(), &c.card)),
            ))
        })
        .await
        .map_err(form_error)?;
    Ok(crate::app::leads::csv_download("segment.csv", csv))
}

/// The segment form's fields.
#[derive(Deserialize)]
pub struct SegmentForm {
    csrf: String,
    name: String,
    #[serde(default)]
    band: String,
    #[serde(default)]
    stage: String,
    #[serde(default, rename = "where")]
    condition: String,
    #[serde(default)]
    had_event: String,
    #[serde(default)]
    within_days: String,
    /// `list`: go on to the leads list of the segment (the leads page's
    /// "save as segment"); otherwise back to the segments page.
    #[serde(default)]
    then: String,
}

/// `POST /segments` (and `POST /leads/segment`, the leads page's "save as
/// segment"): saves a segment.
pub async fn save_segment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SegmentForm>,
) -> Result<Response, PageError> {
    form_visitor(&state, &headers, &f.csrf, Scope::Write).await?;
    let had_event = match some(&f.had_event) {
        None => None,
        Some(event_type) => {
            let within_days: f64 = f
                .within_days
                .trim()
                .parse()
                .ok()
                .filter(|d: &f64| d.is_finite() && *d > 0.0)
                .ok_or_else(|| PageError::bad("within days: a number of days above 0"))?;
            Some(leadscore_store::HadEvent {
                event_type,
                within_days,
            })
        }
    };
    let def = SegmentDefinition {
        band: some(&f.band),
        stage: some(&f.stage),
        condition: some(&f.condition),
        had_event,
    };
    let now = state.now();
    let name = f.name.trim().to_string();
    let saved = name.clone();
    state
        .with_store(move |s| Ok(s.save_segment(&saved, &def, now)?))
        .await
        .map_err(form_error)?;
    Ok(match f.then.as_str() {
        "list" => Redirect::to(&format!("/leads?segment={}", encode(&name))),
        _ => Redirect::to("/segments"),
    }
    .into_response())
}

/// A form that only carries the session's token.
#[derive(Deserialize)]
pub struct TokenForm {
    csrf: String,
}

/// `POST /segments/{name}/delete`.
pub async fn delete_segment(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(name): P<String>,
    Form(f): Form<TokenForm>,
) -> Result<Response, PageError> {
    act(
        &state,
        &headers,
        (&f.csrf, Scope::Write),
        "/segments",
        move |s| s.delete_segment(&name),
    )
    .await
}

/// `GET /webhooks` (admin): subscriptions and each one's recent deliveries.
pub async fn webhooks(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let v = visitor(&state, &headers).await?;
    if !v.may(Scope::Admin) {
        return Err(PageError::forbidden(
            "webhooks are managed with an admin key",
        ));
    }
    let hooks = state
        .read_now(|s| {
            let mut out = Vec::new();
            for w in s.webhooks()?.into_iter().filter(|w| w.removed_at.is_none()) {
                let d = s.deliveries(w.id, DELIVERIES_SHOWN)?;
                out.push((w, d));
            }
            Ok(out)
        })
        .await?;
    let content = html! {
        h1 { "Webhooks" }
        @if hooks.is_empty() { p { "No subscription yet." } }
        @for (w, deliveries) in &hooks {
            section aria-labelledby=(format!("hook-{}", w.id)) {
                h2 id=(format!("hook-{}", w.id)) { "Webhook " (w.id) ": " (w.url) }
                p {
                    "Sends " (w.kinds.join(", ")) " changes"
                    @if let Some(s) = &w.segment { " of segment " (s) }
                    ", since " (w.created_at) "."
                }
                form method="post" action=(format!("/webhooks/{}/delete", w.id)) {
                    (hidden_token(&v))
                    button type="submit" class="danger" { "Remove webhook " (w.id) }
                }
                @if deliveries.is_empty() { p { "No delivery yet." } } @else {
                    table {
                        caption { "Latest deliveries" }
                        thead { tr {
                            th scope="col" { "#" } th scope="col" { "Lead" } th scope="col" { "State" }
                            th scope="col" { "Tries" } th scope="col" { "Last error" }
                        } }
                        tbody {
                            @for d in deliveries {
                                tr {
                                    td class="num" { (d.seq) } td { (d.contact) } td { (d.state) }
                                    td class="num" { (d.attempts) } td { (d.last_error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/webhooks" class="stacked" {
            h2 { "Add a webhook" }
            (hidden_token(&v))
            label for="url" { "URL (http:// or https://)" }
            input id="url" name="url" type="url" required;
            fieldset {
                legend { "Send changes of" }
                @for k in leadscore_store::WEBHOOK_KINDS {
                    label { input type="checkbox" name=(k) value="on" checked; " " (k) }
                }
            }
            label for="segment" { "Only leads of segment (empty: all)" }
            input id="segment" name="segment";
            button type="submit" { "Add webhook" }
        }
    };
    Ok(layout::page("Webhooks", &v, "/webhooks", content).into_response())
}

/// The webhook form's fields.
#[derive(Deserialize)]
pub struct WebhookForm {
    csrf: String,
    url: String,
    #[serde(default)]
    band: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    disqualified: Option<String>,
    #[serde(default)]
    segment: String,
}

/// `POST /webhooks` (admin): subscribes a URL; the page that follows shows
/// its signing secret, once.
pub async fn add_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<WebhookForm>,
) -> Result<Response, PageError> {
    let v = form_visitor(&state, &headers, &f.csrf, Scope::Admin).await?;
    let kinds: Vec<String> = [
        ("band", &f.band),
        ("stage", &f.stage),
        ("disqualified", &f.disqualified),
    ]
    .into_iter()
    .filter(|(_, on)| on.is_some())
    .map(|(k, _)| k.to_string())
    .collect();
    let (url, kinds) =
        crate::webhooks::check_subscription(&f.url, Some(kinds)).map_err(form_error)?;
    let segment = some(&f.segment);
    let now = state.now();
    let (hook, secret) = state
        .with_store(move |s| Ok(s.add_webhook(&url, &kinds, segment.as_deref(), now)?))
        .await
        .map_err(form_error)?;
    Ok(shown_once(
        &v,
        (&format!("Webhook {} added", hook.id), "/webhooks"),
        html! { "Its signing secret, shown this once (each delivery's " code { "Leadscore-Signature" } " is an HMAC-SHA256 with it):" },
        ("secret", &secret),
    ))
}

/// `POST /webhooks/{id}/delete` (admin).
pub async fn remove_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<i64>,
    Form(f): Form<TokenForm>,
) -> Result<Response, PageError> {
    let now = state.now();
    act(
        &state,
        &headers,
        (&f.csrf, Scope::Admin),
        "/webhooks",
        move |s| s.remove_webhook(id, now),
    )
    .await
}

/// `GET /keys` (admin): every key, by name, scope and prefix.
pub async fn keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let v = visitor(&state, &headers).await?;
    if !v.may(Scope::Admin) {
        return Err(PageError::forbidden(
            "API keys are managed with an admin key",
        ));
    }
    let keys = state.read_now(|s| Ok(s.keys()?)).await?;
    let content = html! {
        h1 { "API keys" }
        table {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Scope" } th scope="col" { "Starts with" }
                th scope="col" { "Created" } th scope="col" { "Revoke" }
            } }
            tbody {
                @for k in &keys {
                    tr {
                        th scope="row" { (k.name) }
                        td {
                            (k.scope.name())
                            @if !k.origins.is_empty() { " (from " (k.origins.join(", ")) ")" }
                        }
                        td { code { (k.prefix) } }
                        td { (k.created_at) }
                        td {
                            @match k.revoked_at {
                                Some(t) => { "revoked " (t) }
                                None => {
                                    form method="post" action=(format!("/keys/{}/revoke", k.id)) {
                                        (hidden_token(&v))
                                        button type="submit" class="danger" aria-label=(format!("Revoke key {}", k.name)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/keys" class="stacked" {
            h2 { "Create a key" }
            (hidden_token(&v))
            label for="key-name" { "Name" }
            input id="key-name" name="name" required maxlength="100";
            label for="key-scope" { "Scope" }
            select id="key-scope" name="scope" {
                option value="ingest" { "ingest: only send events from web pages (/t.js)" }
                option value="read" selected { "read: see" }
                option value="write" { "write: also send events and edit contacts and segments" }
                option value="admin" { "admin: also change the model, keys and webhooks" }
            }
            label for="key-origins" { "Origins (ingest keys)" }
            input id="key-origins" name="origins" maxlength="2000"
                placeholder="https://www.example.com https://shop.example.com"
                aria-describedby="key-origins-help";
            p id="key-origins-help" class="help" {
                "The websites an ingest key may send from, separated by spaces; none: any."
            }
            button type="submit" { "Create key" }
        }
    };
    Ok(layout::page("API keys", &v, "/keys", content).into_response())
}

/// The key form's fields.
#[derive(Deserialize)]
pub struct KeyForm {
    csrf: String,
    name: String,
    scope: String,
    #[serde(default)]
    origins: String,
}

/// `POST /keys` (admin): creates a key; the page that follows shows it,
/// once.
pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Result<Response, PageError> {
    let v = form_visitor(&state, &headers, &f.csrf, Scope::Admin).await?;
    let scope = Scope::parse(&f.scope)
        .ok_or_else(|| PageError::bad("scope: ingest, read, write or admin"))?;
    let origins: Vec<String> = f.origins.split_whitespace().map(str::to_owned).collect();
    let name = f.name.trim().to_string();
    if name.is_empty() || name.len() > 100 {
        return Err(PageError::bad("name: 1 to 100 bytes"));
    }
    let now = state.now();
    let (key, text) = state
        .with_store(move |s| Ok(s.create_key_for(&name, scope, &origins, now)?))
        .await
        .map_err(form_error)?;
    Ok(shown_once(
        &v,
        (&format!("Key {} created", key.name), "/keys"),
        html! { "The key, shown this once: copy it now." },
        ("new-key", &text),
    ))
}

/// `POST /keys/{id}/revoke` (admin).
pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<i64>,
    Form(f): Form<TokenForm>,
) -> Result<Response, PageError> {
    let now = state.now();
    act(
        &state,
        &headers,
        (&f.csrf, Scope::Admin),
        "/keys",
        move |s| s.revoke_key(&id.to_string(), now),
    )
    .await
}
