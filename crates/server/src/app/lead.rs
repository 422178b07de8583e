//! One lead's page: its attributes; its score broken down by dimension and
//! rule, each event's decayed points (the explanation); its score over the
//! last 90 days with events and band thresholds; its events; its band and
//! stage history; the predictive likelihood when the model has one; and
//! erasing it, for write keys.

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use leadscore_core::{Explanation, Timestamp};
use leadscore_store::{Scope, StoredEventRow, TransitionRow};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::chart::{Threshold, score_chart, score_text};
use crate::app::error::PageError;
use crate::app::fields::encode;
use crate::app::layout;
use crate::app::leads::shown_score;
use crate::app::session::visitor;
use crate::extract::P;
use crate::state::AppState;

/// Days of history the chart shows.
const CHART_DAYS: i64 = 90;
/// Points on the chart's line besides the events' own times.
const CHART_POINTS: i64 = 90;
/// Events listed on the page.
const EVENTS_SHOWN: usize = 200;

/// What the page shows.
struct Lead {
    attributes: std::collections::BTreeMap<String, String>,
    explanation: Explanation,
    points: Vec<(Timestamp, f64)>,
    events: Vec<StoredEventRow>,
    history: Vec<TransitionRow>,
    thresholds: Vec<(String, f64)>,
}

/// `GET /leads/{id}`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<String>,
) -> Result<Response, PageError> {
    let visitor = visitor(&state, &headers).await?;
    let now = state.now();
    let lead = state
        .read_contact(id.clone(), move |s, id| {
            let attributes = s
                .attributes(id)?
                .ok_or_else(|| leadscore_store::StoreError::UnknownContact(id.into()))?;
            let explanation = s.explain(id, now)?;
            let events = s.contact_events(id, EVENTS_SHOWN)?;
            let day = 86_400_000_000_000_i64;
            let start = now.0 - CHART_DAYS * day;
            // Evenly spaced times, plus just before and at each event in
            // view, so each jump shows where it happens.
            let mut times: Vec<Timestamp> = (0..=CHART_POINTS)
                .map(|i| Timestamp(start + (now.0 - start) * i / CHART_POINTS))
                .collect();
            for e in events.iter().filter(|e| e.at.0 > start && e.at.0 <= now.0) {
                times.push(Timestamp(e.at.0 - 1));
                times.push(e.at);
            }
            times.sort_unstable();
            times.dedup();
            let cards = s.score_series(id, &times)?;
            let points = times
                .into_iter()
                .zip(cards.iter().map(shown_score))
                .collect();
            Ok(Lead {
                attributes,
                explanation,
                points,
                events,
                history: s.history(id)?,
                thresholds: s
                    .model()
                    .bands
                    .iter()
                    .map(|b| (b.id.clone(), b.min_score))
                    .collect(),
            })
        })
        .await?;
    let e = &lead.explanation;
    let content = html! {
        h1 { "Lead " (id) }
        p class="headline" {
            "Score " strong { (score_text(if e.disqualified { 0.0 } else { e.score })) }
            " · band " strong { (e.band.as_deref().unwrap_or("none")) }
            " · stage " strong { (e.stage.as_deref().unwrap_or("none")) }
        }
        section aria-labelledby="chart-h" {
            h2 id="chart-h" { "Score over the last " (CHART_DAYS) " days" }
            (score_chart(
                &lead.points,
                &lead.events.iter().map(|e| (e.at, e.event_type.clone())).collect::<Vec<_>>(),
                &lead.thresholds.iter().map(|(n, m)| Threshold { name: n, min_score: *m }).collect::<Vec<_>>(),
            ))
        }
        section aria-labelledby="why-h" { h2 id="why-h" { "Why this score" } (breakdown(e)) }
        section aria-labelledby="attr-h" {
            h2 id="attr-h" { "Attributes" }
            @if lead.attributes.is_empty() { p { "None." } } @else {
                table class="attributes" {
                    thead { tr { th scope="col" { "Attribute" } th scope="col" { "Value" } } }
                    tbody { @for (k, v) in &lead.attributes { tr { th scope="row" { (k) } td { (v) } } } }
                }
            }
        }
        section aria-labelledby="events-h" { h2 id="events-h" { "Events" } (events(&lead.events)) }
        section aria-labelledby="history-h" { h2 id="history-h" { "Band and stage history" } (history(&lead.history)) }
        @if visitor.may(Scope::Write) {
            section aria-labelledby="delete-h" {
                h2 id="delete-h" { "Erase this lead" }
                p { "Erases its attributes, events, scores and history (the right to be forgotten)." }
                a class="danger" href=(format!("/leads/{}/delete", encode(&id))) { "Erase this lead…" }
            }
        }
    };
    Ok(layout::page(&format!("Lead {id}"), &visitor, "/leads", content).into_response())
}

/// The explanation, readable: each dimension's arithmetic, then each rule
/// with its events and what became of them.
fn breakdown(e: &Explanation) -> Markup {
    html! {
        @if e.disqualified {
            p class="disqualified" { "Disqualified by " (e.disqualified_by.join(", ")) "." }
        }
        table class="dimensions" {
            caption { "Dimensions" }
            thead { tr {
                th scope="col" { "Dimension" } th scope="col" { "Points" } th scope="col" { "Range" }
                th scope="col" { "Weight" } th scope="col" { "Share of the score" }
            } }
            tbody {
                @for d in &e.dimensions {
                    tr {
                        th scope="row" { (d.id) }
                        td class="num" { (format!("{:.2}", d.value)) @if d.clamped { " (from " (format!("{:.2}", d.raw)) ", clamped)" } }
                        td { (d.min) " to " (d.max) }
                        td class="num" { (d.weight) }
                        td class="num" { (format!("{:.1}", d.score_share)) }
                    }
                }
            }
        }
        @for d in e.dimensions.iter().filter_map(|d| d.predicted.as_ref().map(|p| (d, p))) {
            @let (dim, p) = d;
            section class="predicted" {
                h3 { "Likelihood to convert (" (dim.id) "): " (format!("{:.1} %", 100.0 * p.probability)) }
                p { "Learned model " code { (p.model_file) } "." }
                ul {
                    @for f in p.top_positive.iter().chain(&p.top_negative) {
                        li { (f.attribute) " = " (f.value.as_deref().unwrap_or("missing")) ": " (format!("{:+.3}", f.contribution)) " log-odds" }
                    }
                }
            }
        }
        @for r in &e.rules {
            details class="rule" {
                summary {
                    strong { (r.id) } " "
                    @if r.disqualify { "disqualifies" } @else {
                        (format!("{:+.2}", r.total)) " points"
                        @if let Some(d) = &r.dimension { " to " (d) }
                    }
                }
                p {
                    @if let Some(on) = &r.on { "On " code { (on) } " events, " }
                    (format!("{} points each", r.points_each))
                    @if let Some(c) = &r.condition { "; when " code { (c) } }
                    "."
                }
                @if !r.events.is_empty() {
                    table {
                        thead { tr { th scope="col" { "Event" } th scope="col" { "When" } th scope="col" { "What became of it" } th scope="col" { "Points now" } } }
                        tbody {
                            @for ev in &r.events {
                                tr {
                                    td { (ev.id) }
                                    td { (ev.timestamp) " (" (format!("{:.1}", ev.age_days)) " days ago)" }
                                    td { (fate(ev.fate)) }
                                    td class="num" { (format!("{:.2}", ev.contribution)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { (e.band_reason) } p { (e.stage_reason) }
    }
}

/// An event's fate in words.
fn fate(f: &str) -> &'static str {
    match f {
        "counted" => "counted",
        "limit_reached" => "not counted: the rule's limit was reached",
        "after_as_of" => "not counted yet: after now",
        "outside_window" => "not counted: older than the dimension's window",
        "disqualifies" => "disqualifies",
        "disqualifies_lifted" => "disqualified, then lifted",
        "requalifies" => "requalifies",
        _ => "requalifies nothing",
    }
}

fn events(events: &[StoredEventRow]) -> Markup {
    html! {
        @if events.is_empty() { p { "None." } } @else {
            ol class="timeline" reversed {
                @for e in events {
                    li {
                        time datetime=(e.at) { (e.at) } " " strong { (e.event_type) } " "
                        span class="muted" { (e.id) }
                        @if !e.properties.is_empty() {
                            ul class="props" {
                                @for (k, v) in &e.properties { li { (k) ": " (v) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn history(rows: &[TransitionRow]) -> Markup {
    html! {
        @if rows.is_empty() { p { "None." } } @else {
            table class="history" {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "From" }
                    th scope="col" { "To" } th scope="col" { "Cause" }
                } }
                tbody {
                    @for t in rows.iter().rev() {
                        tr {
                            td { (t.at) } td { (t.kind) }
                            td { (t.from.as_deref().unwrap_or("none")) }
                            td { (t.to.as_deref().unwrap_or("none")) }
                            td { (t.cause) @if let Some(d) = &t.detail { " (" (d) ")" } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /leads/{id}/delete`: asks to confirm.
pub async fn confirm_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<String>,
) -> Result<Response, PageError> {
    let visitor = visitor(&state, &headers).await?;
    if !visitor.may(Scope::Write) {
        return Err(PageError::forbidden("erasing a lead needs a write key"));
    }
    let content = html! {
        h1 { "Erase lead " (id) "?" }
        p { "Its attributes, events, scores and history are erased. This cannot be undone." }
        form method="post" action=(format!("/leads/{}/delete", encode(&id))) {
            input type="hidden" name="csrf" value=(visitor.csrf);
            button type="submit" class="danger" { "Erase " (id) }
            " " a href=(format!("/leads/{}", encode(&id))) { "Cancel" }
        }
    };
    Ok(layout::page("Erase a lead", &visitor, "/leads", content).into_response())
}

/// A form that only carries the session's token.
#[derive(Deserialize)]
pub struct TokenForm {
    csrf: String,
}

/// `POST /leads/{id}/delete`: erases the lead.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<String>,
    Form(f): Form<TokenForm>,
) -> Result<Response, PageError> {
    crate::app::settings::act(
        &state,
        &headers,
        (&f.csrf, Scope::Write),
        "/leads",
        move |s| s.delete_contact(&id),
    )
    .await
}
