//! Segments over HTTP: saved, named filters (band, stage, a condition on
//! attributes, dimensions and score, a recent event) whose membership is
//! computed when asked, so always current; members listed, counted, and
//! exported as CSV.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use leadscore_store::Scope;
use leadscore_store::SegmentDefinition;
use serde::Deserialize;

use crate::auth::require;
use crate::contacts::score_object;
use crate::error::ApiError;
use crate::extract::{P, Q};
use crate::state::AppState;

/// A new segment: its name and definition.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSegment {
    name: String,
    #[serde(flatten)]
    definition: SegmentDefinition,
}

fn segment_error(e: leadscore_store::StoreError) -> ApiError {
    match e {
        leadscore_store::StoreError::Segment(m) => {
            let field = m.split(':').next().map(|f| format!("body.{}", f.trim()));
            ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_segment",
                message: m,
                field,
            }
        }
        other => other.into(),
    }
}

/// `POST /v1/segments`: saves (or replaces) a segment.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require(&state, &headers, Scope::Write).await?;
    let body = body.checked()?;
    let s: NewSegment = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(
            "invalid_json",
            format!("the body is not a segment: {e}"),
            Some("body"),
        )
    })?;
    let now = state.now();
    let count = state
        .with_store(move |st| {
            st.save_segment(&s.name, &s.definition, now)
                .map_err(segment_error)?;
            Ok(st.member_count(&s.definition, now)?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"saved": true, "members": count})),
    ))
}

/// `GET /v1/segments`: every segment's definition.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let all = state.read_now(|s| Ok(s.segments()?)).await?;
    let items: Vec<serde_json::Value> = all
        .into_iter()
        .map(|(name, d)| {
            let mut v = serde_json::to_value(d).unwrap_or_default();
            v["name"] = name.into();
            v
        })
        .collect();
    Ok(Json(serde_json::json!({"items": items})))
}

fn unknown(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_segment",
        format!("no segment {name:?}"),
    )
}

/// `GET /v1/segments/{name}`: the definition and how many it holds now.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(name): P<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let now = state.now();
    state
        .read(move |s| {
            let def = s.segment(&name)?.ok_or_else(|| unknown(&name))?;
            let count = s.member_count(&def, now)?;
            let mut v = serde_json::to_value(&def).unwrap_or_default();
            v["name"] = name.into();
            v["members"] = count.into();
            Ok(Json(v))
        })
        .await
}

/// `DELETE /v1/segments/{name}`.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(name): P<String>,
) -> Result<StatusCode, ApiError> {
    require(&state, &headers, Scope::Write).await?;
    state
        .with_store(move |s| {
            if s.delete_segment(&name)? {
                Ok(StatusCode::NO_CONTENT)
            } else {
                Err(unknown(&name))
            }
        })
        .await
}

/// Paging of members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /v1/segments/{name}/members`: the members now, by score.
pub async fn members(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(name): P<String>,
    Q(q): Q<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let page =
        crate::paging::Page::read(q.limit, q.cursor.as_deref(), 100, crate::leads::MAX_LIMIT)?;
    let now = state.now();
    state
        .read(move |s| {
            let def = s.segment(&name)?.ok_or_else(|| unknown(&name))?;
            let order = crate::leads::order_by("-score");
            let ranked = s.ranked_members((&def, None), now, page.needed(), |a, b| {
                order(&a.score, &b.score)
            })?;
            Ok(Json(page.answer(&ranked.items, ranked.total, |c| {
                score_object(s.model(), &c.id, &c.card)
            })))
        })
        .await
}

/// `GET /v1/segments/{name}/export`: every member as CSV (the columns of
/// `leadscore score --format csv`).
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(name): P<String>,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let now = state.now();
    let csv = state
        .read(move |s| {
            let def = s.segment(&name)?.ok_or_else(|| unknown(&name))?;
            let all = s.members(&def, now)?;
            Ok(leadscore_batch::output::csv_file(
                s.model(),
                all.iter().map(|c| (c.id.as_str(), &c.card)),
            ))
        })
        .await?;
    Ok(([("content-type", "text/csv; charset=utf-8")], csv))
}
