//! The leads page: the ranked list sales work from, with its filters,
//! sort, pages, CSV export of what it shows, and "save as segment". It
//! reads through the same query as `GET /v1/leads`
//! (`leads::ranked_leads`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use leadscore_core::{Model, ScoreCard, Timestamp};
use leadscore_store::{ContactScore, Scope, Store};
use maud::{Markup, html};
use serde::Deserialize;

use leadscore_batch::output::csv_file;

use crate::app::chart::{score_text, sparkline};
use crate::app::error::PageError;
use crate::app::fields::{encode, some};
use crate::app::layout;
use crate::app::session::visitor;
use crate::extract::Q;
use crate::leads::{LeadFilter, order_by, ranked_leads};
use crate::state::AppState;

/// Leads on one page.
pub const PAGE_SIZE: usize = 50;

/// Most rows a CSV export holds.
pub const MAX_EXPORT: usize = 100_000;

/// Points of each lead's sparkline (over the last 30 days).
const SPARK_POINTS: usize = 16;

/// The list's filters, sort and page, as the page's form sends them (an
/// empty field is no filter).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    band: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    segment: String,
    #[serde(default, rename = "where")]
    condition: String,
    #[serde(default)]
    sort: String,
    /// Text searched for in ids and attribute values.
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
}

impl ListQuery {
    fn filter(&self) -> LeadFilter {
        LeadFilter {
            band: some(&self.band),
            stage: some(&self.stage),
            condition: some(&self.condition),
            segment: some(&self.segment),
            text: some(&self.q),
        }
    }

    fn sort(&self) -> Result<&str, PageError> {
        match self.sort.as_str() {
            "" => Ok("-score"),
            s @ ("-score" | "score" | "id") => Ok(s),
            _ => Err(PageError::bad("sort is -score, score or id")),
        }
    }

    /// The query string of this list at page `page`.
    fn link(&self, page: usize) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("band", &self.band),
            ("stage", &self.stage),
            ("segment", &self.segment),
            ("where", &self.condition),
            ("q", &self.q),
            ("sort", &self.sort),
        ] {
            if !v.trim().is_empty() {
                parts.push(format!("{k}={}", encode(v.trim())));
            }
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// One row of the list.
struct Row {
    lead: ContactScore,
    last_activity: Option<Timestamp>,
    spark: Vec<f64>,
}

/// What the page shows.
struct Listing {
    rows: Vec<Row>,
    total: usize,
    segments: Vec<String>,
    /// The feed position the page's script announces new hot leads after.
    cursor: i64,
}

fn list(s: &Store, q: &ListQuery, now: Timestamp, page: usize) -> Result<Listing, PageError> {
    let sort = q.sort()?;
    let ranked = ranked_leads(s, &q.filter(), now, page * PAGE_SIZE, order_by(sort))?;
    let day = 86_400_000_000_000_i64;
    let times: Vec<Timestamp> = (0..SPARK_POINTS)
        .map(|i| Timestamp(now.0 - 30 * day + 30 * day * i as i64 / (SPARK_POINTS as i64 - 1)))
        .collect();
    let mut rows = Vec::new();
    for lead in ranked.items.into_iter().skip((page - 1) * PAGE_SIZE) {
        let spark = s
            .score_series(&lead.id, &times)?
            .iter()
            .map(shown_score)
            .collect();
        let last_activity = s.contact_events(&lead.id, 1)?.first().map(|e| e.at);
        rows.push(Row {
            lead,
            last_activity,
            spark,
        });
    }
    Ok(Listing {
        rows,
        total: ranked.total,
        segments: s.segments()?.into_iter().map(|(name, _)| name).collect(),
        cursor: s.last_transition_seq()?,
    })
}

/// The score a person sees: 0 when disqualified.
pub fn shown_score(card: &ScoreCard) -> f64 {
    if card.disqualified { 0.0 } else { card.score }
}

/// A dimension's value as a share of its range, for its bar.
fn share(model: &Model, d: usize, value: f64) -> f64 {
    let dim = &model.dimensions[d];
    let span = dim.max - dim.min;
    if span > 0.0 {
        ((value - dim.min) / span).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// `GET /leads`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<ListQuery>,
) -> Result<Response, PageError> {
    let visitor = visitor(&state, &headers).await?;
    let now = state.now();
    let page = q.page.unwrap_or(1).max(1);
    let query = q.clone();
    let (listing, model) = state
        .read(move |s| {
            let listing = list(s, &query, now, page).map_err(to_api)?;
            Ok((listing, s.model().clone()))
        })
        .await
        .map_err(PageError::from)?;
    let pages = listing.total.div_ceil(PAGE_SIZE).max(1);
    let content = html! {
        h1 { "Leads" }
        (filters(&q, &model, &listing.segments))
        p id="count" aria-live="polite" {
            (listing.total) " leads"
            @if listing.total > 0 { ", page " (page) " of " (pages) }
            " · " a href=(format!("/leads.csv{}", q.link(1))) { "Export CSV" }
        }
        div id="new-hot" role="status" aria-live="polite" data-cursor=(listing.cursor) {}
        (table(&listing.rows, &model, now))
        nav aria-label="Pages" class="pages" {
            @if page > 1 { a href=(format!("/leads{}", q.link(page - 1))) rel="prev" { "Previous page" } }
            @if page < pages { a href=(format!("/leads{}", q.link(page + 1))) rel="next" { "Next page" } }
        }
        @if visitor.may(Scope::Write) {
            (save_segment(&q, &visitor.csrf))
        }
    };
    Ok(layout::page("Leads", &visitor, "/leads", content).into_response())
}

/// The filter form.
fn filters(q: &ListQuery, model: &Model, segments: &[String]) -> Markup {
    let select = |name: &str, label: &str, options: Vec<String>, chosen: &str| {
        html! {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                option value="" { "Any" }
                @for o in options {
                    @if o == chosen { option value=(o) selected { (o) } } @else { option value=(o) { (o) } }
                }
            }
        }
    };
    let mut bands: Vec<String> = model.bands.iter().map(|b| b.id.clone()).collect();
    bands.push("disqualified".into());
    let stages: Vec<String> = model.stages.iter().map(|s| s.id.clone()).collect();
    html! {
        form method="get" action="/leads" class="filters" role="search" aria-label="Filter leads" {
            div {
                label for="q" { "Search" }
                input id="q" name="q" type="search" value=(q.q) placeholder="id, name, company…";
            }
            div { (select("band", "Band", bands, &q.band)) }
            div { (select("stage", "Stage", stages, &q.stage)) }
            div { (select("segment", "Segment", segments.to_vec(), &q.segment)) }
            div class="wide" {
                label for="where" { "Condition" }
                input id="where" name="where" type="text" value=(q.condition)
                    placeholder=r#"{ attribute = "country", equals = "US" }"#
                    aria-describedby="where-help";
                span id="where-help" class="help" { "On attributes, dimensions or the score, as in the model file." }
            }
            div {
                label for="sort" { "Sort" }
                select id="sort" name="sort" {
                    @for (v, l) in [("-score", "Highest score first"), ("score", "Lowest score first"), ("id", "By id")] {
                        @if v == q.sort || (q.sort.is_empty() && v == "-score") {
                            option value=(v) selected { (l) }
                        } @else {
                            option value=(v) { (l) }
                        }
                    }
                }
            }
            div { button type="submit" { "Apply" } }
        }
    }
}

/// The list itself.
fn table(rows: &[Row], model: &Model, now: Timestamp) -> Markup {
    html! {
        table class="leads" {
            caption class="visually-hidden" { "Leads, ranked" }
            thead {
                tr {
                    th scope="col" { "Lead" }
                    th scope="col" { "Score" }
                    @for d in &model.dimensions { th scope="col" { (d.id) } }
                    th scope="col" { "Band" }
                    th scope="col" { "Stage" }
                    th scope="col" { "Last activity" }
                    th scope="col" { "30 days" }
                }
            }
            tbody {
                @for r in rows {
                    @let card = &r.lead.card;
                    tr {
                        th scope="row" { a href=(format!("/leads/{}", encode(&r.lead.id))) { (r.lead.id) } }
                        td class="num" { (score_text(shown_score(card))) }
                        @for (i, v) in card.dimensions.iter().enumerate() {
                            td {
                                meter min="0" max="1" value=(format!("{:.3}", share(model, i, *v)))
                                    aria-label=(format!("{}: {v:.1} points", model.dimensions[i].id)) {}
                            }
                        }
                        td { span class=(format!("band band-{}", card.band_name(model).unwrap_or("none"))) { (card.band_name(model).unwrap_or("none")) } }
                        td { (card.stage_name(model).unwrap_or("none")) }
                        td {
                            @match r.last_activity {
                                Some(t) => { time datetime=(t) { (ago(now, t)) } }
                                None => { "none" }
                            }
                        }
                        td { (sparkline(&r.spark)) }
                    }
                }
            }
        }
    }
}

/// How long ago `t` was, in words.
pub fn ago(now: Timestamp, t: Timestamp) -> String {
    let secs = (now.0 - t.0) / 1_000_000_000;
    match secs {
        s if s < 0 => "in the future".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

/// The "save as segment" form.
fn save_segment(q: &ListQuery, csrf: &str) -> Markup {
    html! {
        form method="post" action="/leads/segment" class="save-segment" {
            h2 { "Save this list as a segment" }
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="then" value="list";
            input type="hidden" name="band" value=(q.band);
            input type="hidden" name="stage" value=(q.stage);
            input type="hidden" name="where" value=(q.condition);
            label for="segment-name" { "Segment name" }
            input id="segment-name" name="name" type="text" required pattern="[A-Za-z0-9_-]{1,64}"
                aria-describedby="segment-help";
            span id="segment-help" class="help" {
                "Letters, digits, - or _."
                @if !q.q.trim().is_empty() { " The search text is not kept in a segment." }
            }
            button type="submit" { "Save segment" }
        }
    }
}

/// `GET /leads.csv`: what the list shows (every page, up to
/// [`MAX_EXPORT`] rows), with the columns of `leadscore score --format csv`.
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<ListQuery>,
) -> Result<Response, PageError> {
    visitor(&state, &headers).await?;
    let now = state.now();
    let csv = state
        .read(move |s| {
            let sort = q.sort().map_err(to_api)?;
            let ranked = ranked_leads(s, &q.filter(), now, MAX_EXPORT, order_by(sort))?;
            Ok(csv_file(
                s.model(),
                ranked.items.iter().map(|c| (c.id.as_str(), &c.card)),
            ))
        })
        .await?;
    Ok(csv_download("leads.csv", csv))
}

/// A CSV file to download.
pub fn csv_download(name: &str, csv: Vec<u8>) -> Response {
    (
        [
            ("content-type", "text/csv; charset=utf-8".to_string()),
            (
                "content-disposition",
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        csv,
    )
        .into_response()
}

/// `/app/hot`'s query: the feed position to look after.
#[derive(Deserialize)]
pub struct HotQuery {
    after: i64,
}

/// Band changes read per call of `/app/hot`.
const HOT_BATCH: usize = 500;

/// `GET /app/hot?after=N`: leads that entered the top band after feed
/// position `N`, and the position to ask after next (the leads page's
/// script polls it).
pub async fn hot(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<HotQuery>,
) -> Result<Response, PageError> {
    visitor(&state, &headers).await?;
    let (cursor, items) = state
        .read(move |s| {
            let top = s.model().bands.first().map(|b| b.id.clone());
            let feed = s.transitions_after(q.after, HOT_BATCH)?;
            let cursor = feed.last().map_or(q.after, |e| e.seq);
            let items: Vec<serde_json::Value> = feed
                .into_iter()
                .filter(|e| e.transition.kind == "band" && e.transition.to == top)
                .map(|e| serde_json::json!({"contact": e.contact, "at": e.transition.at.to_string()}))
                .collect();
            Ok((cursor, items))
        })
        .await?;
    Ok(axum::Json(serde_json::json!({"cursor": cursor, "items": items})).into_response())
}

/// A page error carried through a store read (which answers API errors).
pub fn to_api(e: PageError) -> crate::error::ApiError {
    match e {
        PageError::SignIn => crate::error::ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in",
        ),
        PageError::Status(status, message) => crate::error::ApiError::new(status, "page", message),
    }
}
