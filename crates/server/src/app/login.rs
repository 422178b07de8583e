//! Signing in with an API key, and out.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::app::error::PageError;
use crate::app::layout;
use crate::app::session::{self, COOKIE, clear_cookie, cookie, over_tls, set_cookie};
use crate::state::AppState;

/// The sign-in form, with `message` above it when the last try failed.
fn form(message: Option<&str>) -> axum::response::Html<String> {
    layout::bare(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(m) = message {
                p role="alert" class="error" { (m) }
            }
            form method="post" action="/login" class="signin" {
                label for="key" { "API key" }
                input id="key" name="key" type="password" autocomplete="off" required
                    aria-describedby="key-help";
                p id="key-help" class="help" {
                    "A key from " code { "leadscore keys create" }
                    ". Read keys see; write keys also edit contacts and segments; admin keys change the model, keys and webhooks."
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `GET /login`.
pub async fn page() -> impl IntoResponse {
    form(None)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

/// `POST /login`: a known key starts a session.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Result<Response, PageError> {
    let key = f.key.trim();
    let scope = if !key.is_empty() && key.len() <= 200 {
        state.scope_of(key).await?
    } else {
        None
    };
    let refused = match scope {
        None => Some("Unknown or revoked API key."),
        Some(leadscore_store::Scope::Ingest) => Some(
            "This is an ingest key: it only sends events from web pages. Sign in with a read, write or admin key.",
        ),
        Some(_) => None,
    };
    if let Some(why) = refused {
        return Ok((axum::http::StatusCode::UNAUTHORIZED, form(Some(why))).into_response());
    }
    let id = state.sessions.start(key)?;
    Ok((
        [(header::SET_COOKIE, set_cookie(&id, over_tls(&headers)))],
        Redirect::to("/leads"),
    )
        .into_response())
}

/// The sign-out form's fields.
#[derive(Deserialize)]
pub struct SignOut {
    csrf: String,
}

/// `POST /logout`: ends the session.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignOut>,
) -> Result<Response, PageError> {
    session::form_visitor(&state, &headers, &f.csrf, leadscore_store::Scope::Read).await?;
    if let Some(id) = cookie(&headers, COOKIE) {
        state.sessions.end(id);
    }
    Ok((
        [(header::SET_COOKIE, clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}
