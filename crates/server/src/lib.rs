//! # leadscore-server: the HTTP service
//!
//! A JSON API over the lead database (`leadscore serve`):
//! - [`events`]: `POST /v1/events`, batches answered after a durable commit;
//! - [`ingest`]: the events writer: concurrent requests share one commit;
//! - [`contacts`]: upsert, get, delete, and `GET /v1/contacts/{id}/score`;
//! - [`leads`]: `GET /v1/leads`, the sorted, filtered, paged list;
//! - [`segments`]: saved, named filters, always current;
//! - [`transitions`]: the feed of band and stage changes;
//! - [`model`]: the scoring model, read and replaced;
//! - [`tracking`]: the calls tracking libraries send (Segment-style
//!   `track`, `page`, `identify`, `batch`);
//! - [`webhooks`]: subscriptions and the signed at-least-once sender;
//! - [`ticker`]: decay and windows applied on time, the delivery log pruned;
//! - [`openapi`]: the route table and the OpenAPI document made from it;
//! - [`health`]: `/healthz` and `/metrics`;
//! - [`app`]: the web app's pages, at `/`;
//! - [`auth`]: API keys and scopes; [`error`]: JSON errors;
//!   [`wire`]: batch bodies (JSON array or NDJSON) and their limits;
//!   [`state`]: the database behind one mutex, used from blocking threads.
//!
//! The library never prints: what goes wrong in the background is logged
//! through `tracing`, and the binary chooses where logs go.
//!
//! One process writes the database at a time: the service holds it open;
//! CLI commands that write wait for SQLite's lock (30 s) between the
//! service's transactions.

pub mod app;
pub mod auth;
pub mod connections;
pub mod contacts;
pub mod cors;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod leads;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod paging;
pub mod requests;
pub mod segments;
pub mod state;
pub mod ticker;
pub mod tracking;
pub mod transitions;
pub mod webhooks;
pub mod wire;

use std::future::Future;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

pub use connections::ConnectionLimits;
pub use state::AppState;

use crate::error::ApiError;

/// Every error answer is the JSON error shape: axum's own rejections (a
/// body over the limit, a method a route does not have) come as plain text
/// or nothing, and are rewritten here.
async fn json_errors(request: Request, next: Next) -> Response {
    if let Err(e) = wire::check_headers(request.headers()) {
        return axum::response::IntoResponse::into_response(e);
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status.as_u16() {
        405 => "method_not_allowed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        s if s >= 500 => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let field = matches!(status.as_u16(), 413 | 415).then(|| "body".to_owned());
    axum::response::IntoResponse::into_response(ApiError {
        status,
        code,
        message,
        field,
    })
}

async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such route",
    )
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    use axum::routing::{MethodRouter, delete, put};
    // The same table as the OpenAPI document's, in the same order: a route
    // missing from `openapi::ROUTES` stops the server at start-up.
    let handlers: Vec<(&str, &str, MethodRouter<AppState>)> = vec![
        ("get", "/healthz", get(health::healthz)),
        ("get", "/metrics", get(health::metrics)),
        ("get", "/v1/openapi.json", get(openapi::serve_document)),
        ("post", "/v1/events", post(events::post)),
        ("post", "/v1/contacts", post(contacts::upsert)),
        ("get", "/v1/contacts", get(leads::list)),
        ("get", "/v1/contacts/{id}", get(contacts::get)),
        ("delete", "/v1/contacts/{id}", delete(contacts::delete)),
        ("get", "/v1/contacts/{id}/score", get(contacts::score)),
        ("get", "/v1/leads", get(leads::list)),
        ("get", "/v1/transitions", get(transitions::feed)),
        ("get", "/v1/model", get(model::get)),
        ("put", "/v1/model", put(model::put)),
        ("post", "/v1/track", post(tracking::track)),
        ("post", "/v1/page", post(tracking::page)),
        ("post", "/v1/identify", post(tracking::identify)),
        ("post", "/v1/batch", post(tracking::batch)),
        ("post", "/v1/t", post(tracking::track)),
        ("post", "/v1/p", post(tracking::page)),
        ("post", "/v1/i", post(tracking::identify)),
        ("post", "/v1/b", post(tracking::batch)),
        ("get", "/v1/webhooks", get(webhooks::list)),
        ("post", "/v1/webhooks", post(webhooks::create)),
        ("delete", "/v1/webhooks/{id}", delete(webhooks::remove)),
        (
            "get",
            "/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        ),
        ("get", "/v1/segments", get(segments::list)),
        ("post", "/v1/segments", post(segments::create)),
        ("get", "/v1/segments/{name}", get(segments::get)),
        ("delete", "/v1/segments/{name}", delete(segments::delete)),
        ("get", "/v1/segments/{name}/members", get(segments::members)),
        ("get", "/v1/segments/{name}/export", get(segments::export)),
    ];
    assert!(
        handlers.len() == openapi::ROUTES.len()
            && handlers
                .iter()
                .zip(openapi::ROUTES)
                .all(|((m, p, _), d)| *m == d.method && *p == d.path),
        "the router and openapi::ROUTES disagree"
    );
    // Methods of one path go into one method router.
    let mut by_path: Vec<(&str, MethodRouter<AppState>)> = Vec::new();
    for (_, path, handler) in handlers {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => {
                let merged = std::mem::take(existing).merge(handler);
                *existing = merged;
            }
            None => by_path.push((path, handler)),
        }
    }
    let mut api = Router::new();
    for (path, handler) in by_path {
        api = api.route(path, handler);
    }
    // The API answers errors in its JSON shape; the web app's pages answer
    // HTML (their own error pages).
    api.fallback(not_found)
        .layer(middleware::from_fn(json_errors))
        .merge(app::router())
        .route("/t.js", axum::routing::get(tracking::snippet))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            connections::read_body,
        ))
        .layer(middleware::from_fn(cors::cors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            requests::observe,
        ))
        .layer(DefaultBodyLimit::max(wire::MAX_BODY))
        .with_state(state)
}

/// How often time's changes (decay) are applied while serving.
pub const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves on `listener` until `shutdown` completes, then stops accepting,
/// gives the requests in flight the shutdown deadline of
/// [`ConnectionLimits`] to finish, stops the webhook sender and the
/// ticker, waits for the acknowledged events to be stored, and returns.
/// Deliveries not yet made stay in the outbox for the next run.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state_backlog = std::sync::Arc::clone(&state.ingest.backlog);
    let sender = tokio::spawn(webhooks::sender(state.clone(), stop_rx.clone()));
    let ticker = tokio::spawn(ticker::ticker(state.clone(), stop_rx, TICK_EVERY));
    // The overview's figures, ready before anyone asks.
    app::overview::refresh_in_background(&state);
    let limits = state.limits;
    connections::serve_connections(listener, router(state), limits, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = sender.await;
    let _ = ticker.await;
    // Every acknowledged event stored before returning (they would be
    // stored by the next open anyway: they are in the inbox).
    let backlog = std::sync::Arc::clone(&state_backlog);
    let _ = tokio::task::spawn_blocking(move || backlog.wait_all()).await;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
