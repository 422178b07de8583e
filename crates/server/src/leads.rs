//! `GET /v1/leads`: the list sales work from, filtered by band and stage,
//! sorted, paged with a cursor.

use std::cmp::Ordering;

use axum::Json;
use axum::extract::State;

use crate::extract::Q;
use axum::http::HeaderMap;
use leadscore_core::Timestamp;
use leadscore_store::{ContactScore, Ranked, Scope, ScoreFilter, Store, TextSearch};
use serde::Deserialize;

use crate::auth::require;
use crate::contacts::score_object;
use crate::error::ApiError;
use crate::paging::Page;
use crate::state::AppState;

/// Most leads in one page.
pub const MAX_LIMIT: usize = 1000;

/// The list's options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadsQuery {
    band: Option<String>,
    stage: Option<String>,
    #[serde(rename = "where")]
    condition: Option<String>,
    segment: Option<String>,
    sort: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Lists leads.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<LeadsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let page = Page::read(q.limit, q.cursor.as_deref(), 50, MAX_LIMIT)?;
    let sort = q.sort.clone().unwrap_or_else(|| "-score".into());
    if !["-score", "score", "id"].contains(&sort.as_str()) {
        return Err(ApiError::bad(
            "invalid_sort",
            "sort is -score, score or id",
            Some("query.sort"),
        ));
    }
    let now = state.now();
    state
        .read(move |s| {
            let filter = LeadFilter {
                band: q.band,
                stage: q.stage,
                condition: q.condition,
                segment: q.segment,
                text: None,
            };
            let ranked = ranked_leads(s, &filter, now, page.needed(), order_by(&sort))?;
            Ok(Json(page.answer(&ranked.items, ranked.total, |c| {
                score_object(s.model(), &c.id, &c.card)
            })))
        })
        .await
}

/// Which leads a list holds: every part given must hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct LeadFilter {
    pub band: Option<String>,
    pub stage: Option<String>,
    /// A `where` condition (TOML inline table).
    pub condition: Option<String>,
    /// A saved segment's name.
    pub segment: Option<String>,
    /// Text searched for in ids and attribute values (the web app's
    /// search box).
    pub text: Option<String>,
}

/// The first `keep` leads of the list `filter` gives, in `order`, and how
/// many there are in all: the one query behind `GET /v1/leads` and the web
/// app's list.
pub(crate) fn ranked_leads(
    s: &Store,
    filter: &LeadFilter,
    now: Timestamp,
    keep: usize,
    order: impl Fn(&ContactScore, &ContactScore) -> Ordering + Sync,
) -> Result<Ranked, ApiError> {
    let text = || filter.text.as_deref().and_then(TextSearch::new);
    let Some(name) = &filter.segment else {
        // Only the page's worth is kept and sorted, not every contact.
        let f = ScoreFilter {
            band: filter.band.clone(),
            stage: filter.stage.clone(),
            condition: filter
                .condition
                .as_deref()
                .map(|w| leadscore_store::Filter::parse(w, s.model()))
                .transpose()?,
            text: text(),
        };
        return Ok(s.ranked(now, &f, keep, |a, b| order(&a.score, &b.score))?);
    };
    // The segment's parts and the query's must all hold.
    let mut def = s.segment(name)?.ok_or_else(|| {
        ApiError::bad(
            "unknown_segment",
            format!("no segment {name:?}"),
            Some("query.segment"),
        )
    })?;
    for (mine, theirs) in [
        (&mut def.band, filter.band.clone()),
        (&mut def.stage, filter.stage.clone()),
    ] {
        match (mine.as_ref(), theirs) {
            (Some(a), Some(b)) if *a != b => return Ok(Ranked::default()),
            (_, Some(b)) => *mine = Some(b),
            _ => {}
        }
    }
    if let Some(w) = &filter.condition {
        def.condition = Some(match def.condition.take() {
            Some(d) => format!("{{ all = [{d}, {w}] }}"),
            None => w.clone(),
        });
    }
    s.ranked_members((&def, text()), now, keep, |a, b| order(&a.score, &b.score))
        .map_err(|e| match e {
            leadscore_store::StoreError::Segment(m) => {
                ApiError::bad("invalid_filter", m, Some("query.where"))
            }
            other => other.into(),
        })
}

/// The order of a `sort` value (`-score`, `score` or `id`): by score, ties
/// by id, or by id.
pub(crate) fn order_by(
    sort: &str,
) -> impl Fn(&ContactScore, &ContactScore) -> Ordering + Sync + use<> {
    let sort = sort.to_owned();
    move |a, b| match sort.as_str() {
        "-score" => b
            .card
            .score
            .total_cmp(&a.card.score)
            .then_with(|| a.id.cmp(&b.id)),
        "score" => a
            .card
            .score
            .total_cmp(&b.card.score)
            .then_with(|| a.id.cmp(&b.id)),
        _ => a.id.cmp(&b.id),
    }
}
