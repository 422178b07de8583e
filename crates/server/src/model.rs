//! The scoring model over HTTP: `GET /v1/model` (current version, its text
//! and the version history) and `PUT /v1/model?dry_run=true` (validate,
//! show what would move, or apply and re-score everyone).

use axum::Json;
use axum::extract::State;

use crate::extract::Q;
use axum::http::HeaderMap;
use leadscore_store::Scope;
use serde::Deserialize;

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;

/// The current model and the version history.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    state
        .read_now(|s| {
            let version = s.model_version();
            let text = s.model_text(version)?;
            let log: Vec<serde_json::Value> = s
                .model_log()?
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "version": v.version, "name": v.name, "author_version": v.author_version,
                        "created_at": v.created_at.to_string(),
                    })
                })
                .collect();
            Ok(Json(serde_json::json!({"version": version, "name": s.model().name, "toml": text, "versions": log})))
        })
        .await
}

/// `?dry_run=true`: change nothing, say what would move.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutQuery {
    #[serde(default)]
    dry_run: bool,
}

/// Sets a new model (TOML body; predictive dimensions are not accepted
/// here yet: their model files are set with `leadscore model set`).
pub async fn put(
    State(state): State<AppState>,
    Q(q): Q<PutQuery>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Admin).await?;
    let body = body.checked()?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad("invalid_utf8", "the model is not UTF-8", Some("body")))?;
    let now = state.now();
    let dry_run = q.dry_run;
    state
        .with_store(move |s| {
            let change = s.set_model(&text, now, dry_run)?;
            let bands: serde_json::Map<String, serde_json::Value> = change
                .bands
                .iter()
                .map(|(k, (a, b))| (k.clone(), serde_json::json!({"before": a, "after": b})))
                .collect();
            let stages: serde_json::Map<String, serde_json::Value> = change
                .stages
                .iter()
                .map(|(k, (a, b))| (k.clone(), serde_json::json!({"before": a, "after": b})))
                .collect();
            let movers: Vec<serde_json::Value> = change
                .movers
                .iter()
                .map(|(id, a, b)| serde_json::json!({"id": id, "before": a, "after": b}))
                .collect();
            Ok(Json(serde_json::json!({
                "dry_run": dry_run,
                "version": change.version,
                "bands": bands,
                "stages": stages,
                "moved": change.moved,
                "biggest_movers": movers,
            })))
        })
        .await
}
