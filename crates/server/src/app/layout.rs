//! The frame of every page: head, navigation, sign-out, and the main
//! landmark the page's content goes in. Scripts and styles are files of
//! their own (`/app/app.js`, `/app/app.css`): the Content-Security-Policy
//! allows no inline script or style.

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};

use leadscore_store::Scope;

use crate::app::session::Visitor;

/// The pages in the navigation: path, label, and the scope that may open it.
const NAV: [(&str, &str, Scope); 6] = [
    ("/", "Overview", Scope::Read),
    ("/leads", "Leads", Scope::Read),
    ("/model", "Model", Scope::Read),
    ("/segments", "Segments", Scope::Read),
    ("/webhooks", "Webhooks", Scope::Admin),
    ("/keys", "API keys", Scope::Admin),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · leadscore" }
            link rel="stylesheet" href="/app/app.css";
            script src="/app/app.js" defer {}
        }
    }
}

/// The document around a page: head, skip link, the top bar (`top`, after
/// the brand) and the main landmark holding `content`.
fn document(title: &str, top: Markup, content: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    a class="skip" href="#main" { "Skip to content" }
                    header class="top" { span class="brand" { "leadscore" } (top) }
                    main id="main" tabindex="-1" { (content) }
                }
            }
        }
        .into_string(),
    )
}

/// A page of a signed-in visitor; `active` is the navigation entry it
/// belongs to.
pub fn page(title: &str, visitor: &Visitor, active: &str, content: Markup) -> Html<String> {
    let top = html! {
        nav aria-label="Main" {
            ul {
                @for (path, label, needed) in NAV {
                    @if visitor.may(needed) { li {
                        @if path == active {
                            a href=(path) aria-current="page" { (label) }
                        } @else {
                            a href=(path) { (label) }
                        }
                    } }
                }
            }
        }
        form method="post" action="/logout" class="signout" {
            input type="hidden" name="csrf" value=(visitor.csrf);
            span class="scope" { "Key scope: " (visitor.scope.name()) }
            button type="submit" { "Sign out" }
        }
    };
    document(title, top, content)
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, content: Markup) -> Html<String> {
    document(title, html! {}, content)
}
