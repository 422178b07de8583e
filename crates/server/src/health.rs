//! `/healthz` (is the database answering) and `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use leadscore_store::Scope;

use crate::auth::{require, scope_of_request};
use crate::error::ApiError;
use crate::state::AppState;

/// Health: the database answers. Open to all (load balancers carry no
/// key), it tells strangers only that; with a read key, also how many
/// contacts there are and which model version is live.
pub async fn healthz(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reader =
        matches!(scope_of_request(&state, &headers).await, Ok(Some(s)) if s >= Scope::Read);
    let (contacts, version) = state
        .read_now(move |s| {
            Ok(if reader {
                Some((s.counts()?.0, s.model_version()))
            } else {
                s.model_version();
                None
            })
        })
        .await?
        .unzip();
    let mut answer = serde_json::json!({"status": "ok"});
    if let (Some(contacts), Some(version)) = (contacts, version) {
        answer["contacts"] = contacts.into();
        answer["model_version"] = version.into();
    }
    Ok(Json(answer))
}

/// Metrics in the Prometheus text format (a read key).
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    Ok((
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}
