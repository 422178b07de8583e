//! What a page answers when it cannot show what was asked: the sign-in
//! page for a visitor who is not signed in, otherwise a page with the
//! status and the reason.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::layout;
use crate::error::ApiError;

/// A page that cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session or its key ended): go and sign in.
    SignIn,
    /// Any other failure, with its status and a message for people.
    Status(StatusCode, String),
}

impl PageError {
    /// 403: the key may not do this.
    pub fn forbidden(message: impl Into<String>) -> PageError {
        PageError::Status(StatusCode::FORBIDDEN, message.into())
    }

    /// 400: a form or filter is wrong.
    pub fn bad(message: impl Into<String>) -> PageError {
        PageError::Status(StatusCode::BAD_REQUEST, message.into())
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError::Status(StatusCode::NOT_FOUND, message.into())
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> PageError {
        PageError::Status(StatusCode::INTERNAL_SERVER_ERROR, message.into())
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        match e.status {
            StatusCode::UNAUTHORIZED => PageError::SignIn,
            status => PageError::Status(status, e.message),
        }
    }
}

impl From<leadscore_store::StoreError> for PageError {
    fn from(e: leadscore_store::StoreError) -> PageError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => Redirect::to("/login").into_response(),
            PageError::Status(status, message) => {
                let title = status.canonical_reason().unwrap_or("Error");
                let body = maud::html! {
                    h1 { (status.as_u16()) " " (title) }
                    p role="alert" { (message) }
                    p { a href="/leads" { "Back to the leads" } }
                };
                (status, layout::bare(title, body)).into_response()
            }
        }
    }
}
