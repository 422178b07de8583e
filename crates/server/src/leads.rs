//! `GET /v1/leads`: the list sales work from, filtered by band and stage,
//! sorted, paged with a cursor.

use std::cmp::Ordering;

use axum::Json;
use axum::extract::State;

use crate::extract::Q;
use axum::http::HeaderMap;
use leadscore_store::{ContactScore, Scope, ScoreFilter};
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
            let order = order_by(&sort);
            let answer = |first: &[ContactScore], total: usize| {
                Json(page.answer(first, total, |c| score_object(s.model(), &c.id, &c.card)))
            };
            let Some(name) = &q.segment else {
                // Only the page's worth is kept and sorted, not every contact.
                let filter = ScoreFilter {
                    band: q.band,
                    stage: q.stage,
                    condition: q
                        .condition
                        .map(|w| leadscore_store::Filter::parse(&w, s.model()))
                        .transpose()?,
                };
                let ranked = s.ranked(now, &filter, page.needed(), |a, b| {
                    order(&a.score, &b.score)
                })?;
                return Ok(answer(&ranked.items, ranked.total));
            };
            // The segment's parts and the query's must all hold.
            let mut def = s.segment(name)?.ok_or_else(|| {
                ApiError::bad(
                    "unknown_segment",
                    format!("no segment {name:?}"),
                    Some("query.segment"),
                )
            })?;
            for (mine, theirs) in [(&mut def.band, q.band), (&mut def.stage, q.stage)] {
                match (mine.as_ref(), theirs) {
                    (Some(a), Some(b)) if *a != b => return Ok(answer(&[], 0)),
                    (_, Some(b)) => *mine = Some(b),
                    _ => {}
                }
            }
            if let Some(w) = q.condition {
                def.condition = Some(match def.condition.take() {
                    Some(d) => format!("{{ all = [{d}, {w}] }}"),
                    None => w,
                });
            }
            let ranked = s
                .ranked_members(&def, now, page.needed(), |a, b| order(&a.score, &b.score))
                .map_err(|e| match e {
                    leadscore_store::StoreError::Segment(m) => {
                        ApiError::bad("invalid_filter", m, Some("query.where"))
                    }
                    other => other.into(),
                })?;
            Ok(answer(&ranked.items, ranked.total))
        })
        .await
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
