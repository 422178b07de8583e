//! The web app: the pages sales and marketing use, served by `leadscore
//! serve` at `/` beside the API. Server-rendered HTML (maud: every value
//! escaped, templates checked at compile time), one stylesheet and one
//! small script built into the binary, charts drawn as SVG by the server.
//! Pages read and write through the same store functions as the API.
//!
//! - [`session`]: signing in with an API key, the session cookie, the
//!   checks every form passes (token, origin, scope);
//! - [`layout`]: the frame of every page; [`error`]: error pages;
//!   [`fields`]: form fields and links;
//! - [`overview`], [`leads`], [`lead`], [`model`], [`settings`]
//!   (segments, webhooks, API keys): the pages; [`login`];
//! - [`chart`]: SVG charts with their text equivalents.

pub mod chart;
pub mod error;
pub mod fields;
pub mod layout;
pub mod lead;
pub mod leads;
pub mod login;
pub mod model;
pub mod overview;
pub mod session;
pub mod settings;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// The stylesheet, built into the binary.
const CSS: &str = include_str!("assets/app.css");
/// The script (progressive: every page works without it).
const JS: &str = include_str!("assets/app.js");

/// The policy every page is served with: nothing inline, nothing from
/// elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

/// The app's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::page).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route("/leads", get(leads::page))
        .route("/leads.csv", get(leads::export))
        .route("/leads/segment", post(settings::save_segment))
        .route("/leads/{id}", get(lead::page))
        .route(
            "/leads/{id}/delete",
            get(lead::confirm_delete).post(lead::delete),
        )
        .route("/model", get(model::page))
        .route("/model/preview", post(model::preview))
        .route("/model/backtest", get(model::backtest))
        .route("/model/apply", post(model::apply))
        .route(
            "/segments",
            get(settings::segments).post(settings::save_segment),
        )
        .route("/segments/{name}", get(settings::export_segment))
        .route("/segments/{name}/delete", post(settings::delete_segment))
        .route(
            "/webhooks",
            get(settings::webhooks).post(settings::add_webhook),
        )
        .route("/webhooks/{id}/delete", post(settings::remove_webhook))
        .route("/keys", get(settings::keys).post(settings::create_key))
        .route("/keys/{id}/revoke", post(settings::revoke_key))
        .route("/app/hot", get(leads::hot))
        .route("/app/app.css", get(css))
        .route("/app/app.js", get(js))
        .layer(middleware::from_fn(security_headers))
}
