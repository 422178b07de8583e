//! The overview: how many leads are in each band and stage, how scores
//! spread, the funnel through the stages, the leads whose score moved most
//! in the last 7 days, and the band and stage changes of the last 30 days.
//!
//! Its figures score every contact (twice, for the movers): exact for the
//! time they state, they are kept ([`OverviewCache`]) and shown at once;
//! figures older than [`FRESH`] are shown while new ones are computed in
//! the background, and figures of another model version are never shown.
//! No request waits for them: before the first ones exist the page says
//! they are being computed.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use leadscore_core::Timestamp;
use leadscore_store::ScoreFilter;
use maud::html;

use crate::app::chart::{day, histogram, score_text};
use crate::app::error::PageError;
use crate::app::fields::encode;
use crate::app::layout;
use crate::app::leads::shown_score;
use crate::app::session::visitor;
use crate::state::AppState;

/// How long figures are shown without computing new ones.
pub const FRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// The figures the page shows.
pub struct Figures {
    /// The time they are for.
    at: Timestamp,
    /// The model version they were computed under.
    model_version: i64,
    total: u64,
    bands: Vec<(String, u64)>,
    stages: Vec<(String, u64)>,
    histogram: [u64; 10],
    per_day: Vec<(Timestamp, u64, u64)>,
    /// The largest score changes over [`MOVERS_DAYS`]: (lead, before, now).
    movers: Vec<(String, f64, f64)>,
}

/// Days the top movers' change is measured over.
const MOVERS_DAYS: i64 = 7;
/// Top movers listed.
const MOVERS: usize = 10;

/// The overview's figures, kept between requests.
#[derive(Default)]
pub struct OverviewCache {
    kept: std::sync::Mutex<Option<(std::sync::Arc<Figures>, std::time::Instant)>>,
    refreshing: std::sync::atomic::AtomicBool,
}

/// Computes the figures at `now` (every contact scored, on a reading
/// handle) and keeps them.
async fn refresh(state: &AppState) -> Result<(), PageError> {
    let now = state.now();
    let f = std::sync::Arc::new(state.read(move |s| compute(s, now)).await?);
    if let Ok(mut kept) = state.overview.kept.lock() {
        *kept = Some((f, std::time::Instant::now()));
    }
    Ok(())
}

/// Computes the figures in the background unless that is under way.
pub fn refresh_in_background(state: &AppState) {
    use std::sync::atomic::Ordering;
    if state.overview.refreshing.swap(true, Ordering::AcqRel) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = refresh(&state).await {
            tracing::warn!(error = ?e, "computing the overview failed");
        }
        state.overview.refreshing.store(false, Ordering::Release);
    });
}

/// `GET /`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let visitor = visitor(&state, &headers).await?;
    let version = state.read_now(|s| Ok(s.model_version())).await?;
    let kept_now = || {
        state
            .overview
            .kept
            .lock()
            .ok()
            .and_then(|k| k.clone())
            .filter(|(f, _)| f.model_version == version)
    };
    // Figures are never computed while a request waits: until the first
    // ones exist (a few seconds after start at 1M leads), the page says so
    // and reloads itself.
    let Some((f, made)) = kept_now() else {
        refresh_in_background(&state);
        let content = html! {
            h1 { "Overview" }
            div id="pending" data-reload-seconds="3" role="status" {
                p { "The overview's figures are being computed: every lead is scored now and "
                    (MOVERS_DAYS) " days ago. This page reloads itself when they are ready; "
                    a href="/" { "reload now" } "." }
            }
        };
        return Ok(layout::page("Overview", &visitor, "/", content).into_response());
    };
    if made.elapsed() > FRESH {
        refresh_in_background(&state);
    }
    // The funnel: every lead, then those at each stage or a more advanced
    // one. The model lists stages from the most advanced (the first whose
    // condition holds wins), so the funnel reads them backwards.
    let mut funnel = vec![("all leads".to_string(), f.total)];
    let staged: Vec<&(String, u64)> = f.stages.iter().filter(|(id, _)| id != "none").collect();
    for i in (0..staged.len()).rev() {
        let at_or_beyond: u64 = staged[..=i].iter().map(|(_, n)| n).sum();
        funnel.push((staged[i].0.clone(), at_or_beyond));
    }
    let content = html! {
        h1 { "Overview" }
        p { (f.total) " leads, scored at " (f.at) " (figures are recomputed when over a minute old)." }
        div class="cards" {
            section aria-labelledby="bands-h" {
                h2 id="bands-h" { "Bands" }
                table { tbody { @for (b, n) in &f.bands {
                    tr { th scope="row" { a href=(format!("/leads?band={}", encode(b))) { (b) } } td class="num" { (n) } }
                } } }
            }
            section aria-labelledby="stages-h" {
                h2 id="stages-h" { "Stages" }
                table { tbody { @for (s, n) in &f.stages {
                    tr { th scope="row" { (s) } td class="num" { (n) } }
                } } }
            }
            section aria-labelledby="funnel-h" {
                h2 id="funnel-h" { "Funnel" }
                table { tbody { @for (s, n) in &funnel {
                    tr {
                        th scope="row" { (s) }
                        td class="num" { (n) }
                        td { meter min="0" max=(f.total.max(1)) value=(n) aria-label=(format!("{s}: {n} of {}", f.total)) {} }
                    }
                } } }
            }
        }
        section aria-labelledby="hist-h" {
            h2 id="hist-h" { "Scores" }
            (histogram(&f.histogram))
        }
        section aria-labelledby="movers-h" {
            h2 id="movers-h" { "Top movers, last " (MOVERS_DAYS) " days" }
            @if f.movers.is_empty() { p { "No score moved." } } @else {
                table {
                    thead { tr { th scope="col" { "Lead" } th scope="col" { "Score then" } th scope="col" { "Now" } th scope="col" { "Change" } } }
                    tbody {
                        @for (id, a, b) in &f.movers {
                            tr {
                                th scope="row" { a href=(format!("/leads/{}", encode(id))) { (id) } }
                                td class="num" { (score_text(*a)) } td class="num" { (score_text(*b)) }
                                td class="num" { (format!("{:+.1}", b - a)) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="days-h" {
            h2 id="days-h" { "Band and stage changes, last 30 days" }
            @if f.per_day.is_empty() { p { "None." } } @else {
                table {
                    thead { tr { th scope="col" { "Day" } th scope="col" { "Band changes" } th scope="col" { "Stage changes" } } }
                    tbody { @for (d, b, s) in &f.per_day { tr { td { (day(*d)) } td class="num" { (b) } td class="num" { (s) } } } }
                }
            }
        }
    };
    Ok(layout::page("Overview", &visitor, "/", content).into_response())
}

/// The figures at `now`.
fn compute(s: &leadscore_store::Store, now: Timestamp) -> Result<Figures, crate::error::ApiError> {
    let model = s.model();
    let mut bands: BTreeMap<String, u64> = BTreeMap::new();
    let mut stages: BTreeMap<String, u64> = BTreeMap::new();
    let mut hist = [0u64; 10];
    let mut total = 0;
    let day_ns = 86_400_000_000_000_i64;
    let before: std::collections::HashMap<String, f64> = s
        .scores(
            Timestamp(now.0 - MOVERS_DAYS * day_ns),
            &ScoreFilter::default(),
        )?
        .into_iter()
        .map(|c| (c.id, shown_score(&c.card)))
        .collect();
    let mut movers: Vec<(String, f64, f64)> = Vec::new();
    for c in s.scores(now, &ScoreFilter::default())? {
        total += 1;
        let then = before.get(&c.id).copied().unwrap_or(0.0);
        let score = shown_score(&c.card);
        if score != then {
            movers.push((c.id.clone(), then, score));
        }
        *bands
            .entry(c.card.band_name(model).unwrap_or("none").to_string())
            .or_default() += 1;
        *stages
            .entry(c.card.stage_name(model).unwrap_or("none").to_string())
            .or_default() += 1;
        let bucket = (shown_score(&c.card) / 10.0).floor().clamp(0.0, 9.0) as usize;
        hist[bucket] += 1;
    }
    // Model order: bands, then disqualified and none; stages likewise.
    let ordered = |ids: Vec<String>, counts: &BTreeMap<String, u64>| {
        ids.into_iter()
            .map(|id| {
                let n = counts.get(&id).copied().unwrap_or(0);
                (id, n)
            })
            .collect::<Vec<_>>()
    };
    let mut band_ids: Vec<String> = model.bands.iter().map(|b| b.id.clone()).collect();
    band_ids.extend(["disqualified".to_string(), "none".to_string()]);
    let mut stage_ids: Vec<String> = model.stages.iter().map(|s| s.id.clone()).collect();
    stage_ids.push("none".to_string());
    movers.sort_by(|a, b| {
        (b.2 - b.1)
            .abs()
            .total_cmp(&(a.2 - a.1).abs())
            .then_with(|| a.0.cmp(&b.0))
    });
    movers.truncate(MOVERS);
    Ok(Figures {
        at: now,
        model_version: s.model_version(),
        total,
        bands: ordered(band_ids, &bands),
        stages: ordered(stage_ids, &stages),
        histogram: hist,
        per_day: s.transitions_per_day(Timestamp(now.0 - 30 * day_ns), now)?,
        movers,
    })
}
