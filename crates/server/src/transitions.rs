//! `GET /v1/transitions?after=CURSOR&limit=N`: the feed of band and stage
//! changes, oldest first; `next_cursor` continues it.

use axum::Json;
use axum::extract::State;

use crate::extract::Q;
use axum::http::HeaderMap;
use leadscore_store::Scope;
use serde::Deserialize;

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;

/// The feed's options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// Lists changes after a cursor.
pub async fn feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<FeedQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad(
            "invalid_limit",
            "limit is 1 to 1000",
            Some("query.limit"),
        ));
    }
    let after: i64 = match &q.after {
        None => 0,
        Some(c) => c
            .strip_prefix("t")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                ApiError::bad(
                    "invalid_cursor",
                    "not a cursor this service gave",
                    Some("query.after"),
                )
            })?,
    };
    state
        .read(move |s| {
            let rows = s.transitions_after(after, limit)?;
            let next = rows
                .last()
                .map(|r| format!("t{}", r.seq))
                .unwrap_or_else(|| format!("t{after}"));
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "contact": r.contact,
                        "at": r.transition.at.to_string(),
                        "kind": r.transition.kind,
                        "from": r.transition.from,
                        "to": r.transition.to,
                        "cause": r.transition.cause,
                        "detail": r.transition.detail,
                        "model_version": r.transition.model_version,
                    })
                })
                .collect();
            Ok(Json(
                serde_json::json!({"items": items, "next_cursor": next}),
            ))
        })
        .await
}
