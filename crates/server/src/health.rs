//! `/healthz` (is the database answering) and `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use leadscore_store::Scope;

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;

/// Health: the database answers, and which model version is live. Open to
/// all (load balancers carry no key).
pub async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let (contacts, version) = state
        .read_now(|s| Ok((s.counts()?.0, s.model_version())))
        .await?;
    Ok(Json(
        serde_json::json!({"status": "ok", "contacts": contacts, "model_version": version}),
    ))
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
