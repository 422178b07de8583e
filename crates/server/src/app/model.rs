//! The model page: the rules as a table grouped by dimension, the version
//! history with what changed between versions, and, for admin keys, the
//! model's text to edit: checked (every problem at its line), previewed
//! (what would move: bands and stages before and after, the biggest
//! movers), then applied. The same store calls as `PUT /v1/model`.

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_core::model::RuleKind;
use leadscore_core::{Model, ModelError};
use leadscore_store::{ModelChange, ModelVersionRow, Scope};
use maud::{Markup, html};
use serde::Deserialize;

use crate::app::chart::score_text;
use crate::app::error::PageError;
use crate::app::fields::encode;
use crate::app::layout;
use crate::app::session::{Visitor, form_visitor, visitor};
use crate::extract::Q;
use crate::state::AppState;

/// Longest model text taken from the form, in bytes (the model file's
/// own limit).
const MAX_TEXT: usize = 4 << 20;

/// Lines compared by the version diff at most, per version.
const MAX_DIFF_LINES: usize = 4_000;

/// `?diff=N`: show what version N changed.
#[derive(Deserialize)]
pub struct ModelQuery {
    diff: Option<i64>,
}

/// `GET /model`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<ModelQuery>,
) -> Result<Response, PageError> {
    let visitor = visitor(&state, &headers).await?;
    let (model, version, text, log, diff) = state
        .read_now(move |s| {
            let version = s.model_version();
            let text = s.model_text(version)?.unwrap_or_default();
            let diff = match q.diff {
                Some(n) if n > 1 => match (s.model_text(n - 1)?, s.model_text(n)?) {
                    (Some(a), Some(b)) => Some((n, a, b)),
                    _ => None,
                },
                _ => None,
            };
            Ok((s.model().clone(), version, text, s.model_log()?, diff))
        })
        .await?;
    let content = html! {
        h1 { "Model" }
        p { "Version " (version) ": " strong { (model.name) } " (the file's version " (model.version) ")." }
        p { a href="/model/backtest" { "Backtest the model on past outcomes" } }
        (rules(&model))
        (versions(&log, version))
        @if let Some((n, before, after)) = &diff {
            section aria-labelledby="diff-h" {
                h2 id="diff-h" { "What version " (n) " changed" }
                (line_diff(before, after))
            }
        }
        @if visitor.may(Scope::Admin) {
            (editor(&visitor, &text, &[]))
        }
    };
    Ok(layout::page("Model", &visitor, "/model", content).into_response())
}

/// `/model/backtest`'s query: the outcome event type and the horizon.
#[derive(Deserialize)]
pub struct BacktestQuery {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    horizon_days: Option<f64>,
}

/// Days after the backtest's as-of time in which an outcome counts, by
/// default.
const HORIZON_DAYS: f64 = 90.0;

/// `GET /model/backtest?outcome=TYPE&horizon_days=N`: how the current
/// model would have ranked the leads `N` days ago against who then had an
/// outcome event within the `N` days: conversion and lift per band and
/// stage, ROC AUC. Leads that had converted before are left out.
pub async fn backtest(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<BacktestQuery>,
) -> Result<Response, PageError> {
    let visitor = visitor(&state, &headers).await?;
    let horizon = q.horizon_days.unwrap_or(HORIZON_DAYS);
    if !(horizon.is_finite() && horizon > 0.0 && horizon <= 3650.0) {
        return Err(PageError::bad(
            "horizon: a number of days above 0, at most 3650",
        ));
    }
    let now = state.now();
    let outcome = q.outcome.trim().to_string();
    let (types, result) = state
        .read(move |s| {
            let types = s.event_types()?;
            if outcome.is_empty() {
                return Ok((types, None));
            }
            if !types.contains(&outcome) {
                return Ok((types, Some(Err(format!("no {outcome:?} event is stored")))));
            }
            let as_of = leadscore_core::Timestamp(now.0 - (horizon * 86_400e9) as i64);
            let scored = s.scores(as_of, &leadscore_store::ScoreFilter::default())?;
            let ids: Vec<&str> = scored.iter().map(|c| c.id.as_str()).collect();
            let outcomes = leadscore_learn::outcomes::from_events(
                &ids,
                s.event_times(&outcome)?,
                as_of.0,
                horizon,
            );
            Ok((
                types,
                Some(outcomes.map_err(|e| e.to_string()).map(|o| {
                    let cards: Vec<_> = o.keep.iter().map(|&i| scored[i].card.clone()).collect();
                    (
                        as_of,
                        o.left_out,
                        leadscore_learn::backtest::backtest(s.model(), &cards, &o.labels),
                    )
                })),
            ))
        })
        .await?;
    let content = html! {
        h1 { "Backtest" }
        form method="get" action="/model/backtest" class="filters" {
            div {
                label for="outcome" { "Outcome event" }
                select id="outcome" name="outcome" {
                    @for t in &types {
                        @if *t == q.outcome { option value=(t) selected { (t) } } @else { option value=(t) { (t) } }
                    }
                }
            }
            div {
                label for="horizon" { "Within days" }
                input id="horizon" name="horizon_days" inputmode="decimal" value=(horizon);
            }
            div { button type="submit" { "Run the backtest" } }
        }
        @match &result {
            None => { p { "Choose the event that means a lead converted (a won deal, a signed contract)." } }
            Some(Err(m)) => { p role="alert" { (m) } }
            Some(Ok((as_of, left_out, b))) => {
                p id="backtest-summary" {
                    "Scored as of " (as_of) ", " (horizon) " days ago: " (b.leads) " leads, "
                    (b.conversions) " converted within " (horizon) " days; ROC AUC "
                    (format!("{:.3}", b.roc_auc)) "; " (left_out) " left out (converted before)."
                }
                @for (title, groups) in [("By band", &b.bands), ("By stage", &b.stages)] {
                    table class="backtest" {
                        caption { (title) }
                        thead { tr {
                            th scope="col" { "" } th scope="col" { "Leads" } th scope="col" { "Converted" }
                            th scope="col" { "Rate" } th scope="col" { "Lift" } th scope="col" { "Share of conversions" }
                        } }
                        tbody {
                            @for g in groups.iter() {
                                tr {
                                    th scope="row" { (g.name) }
                                    td class="num" { (g.leads) } td class="num" { (g.conversions) }
                                    td class="num" { (format!("{:.1} %", 100.0 * g.conversion_rate)) }
                                    td class="num" { (format!("{:.2}", g.lift)) }
                                    td class="num" { (format!("{:.1} %", 100.0 * g.share_of_conversions)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Backtest", &visitor, "/model", content).into_response())
}

/// The rules, by dimension, with the dimensions' settings.
fn rules(model: &Model) -> Markup {
    let groups: Vec<(String, String, Vec<usize>)> = model
        .dimensions
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            let mut settings = format!(
                "{} to {} points, weight {}",
                dim.min, dim.max, model.weights[d]
            );
            if let Some(h) = dim.half_life_days {
                settings.push_str(&format!(", points halve every {h} days"));
            }
            if let Some(w) = dim.window_days {
                settings.push_str(&format!(", events count for {w} days"));
            }
            if dim.predictive.is_some() {
                settings.push_str(", predicted by a learned model");
            }
            let ids = (0..model.rules.len())
                .filter(|&r| model.rules[r].dimension == Some(d) && !model.rules[r].disqualify)
                .collect();
            (dim.id.clone(), settings, ids)
        })
        .chain(std::iter::once((
            "Disqualifying rules".to_string(),
            "a match sets the score to 0 and the band to disqualified".to_string(),
            (0..model.rules.len())
                .filter(|&r| model.rules[r].disqualify)
                .collect(),
        )))
        .collect();
    html! {
        section aria-labelledby="rules-h" {
            h2 id="rules-h" { "Rules" }
            @for (name, settings, ids) in &groups {
                @if !ids.is_empty() {
                    table class="rules" {
                        caption { (name) ": " (settings) }
                        thead { tr {
                            th scope="col" { "Rule" } th scope="col" { "On" } th scope="col" { "Points" }
                            th scope="col" { "When" } th scope="col" { "Limit" }
                        } }
                        tbody {
                            @for &r in ids {
                                @let rule = &model.rules[r];
                                tr {
                                    th scope="row" { (rule.id) }
                                    td { @match &rule.kind { RuleKind::Attribute => "attributes", RuleKind::Event { on } => code { (on) } } }
                                    td class="num" { @if rule.disqualify { "—" } @else { (format!("{:+}", rule.points)) } }
                                    td { @if let Some(w) = &rule.when_text { code { (w) } } @else { "always" } }
                                    td {
                                        @if let Some(l) = &rule.limit {
                                            (l.count) " at most"
                                            @if let Some(d) = l.per_days { " per " (d) " days" }
                                        }
                                        @if let Some(r) = &rule.requalify_on { "lifted by a later " code { (r) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            table class="rules" {
                caption { "Bands and stages" }
                tbody {
                    @for b in &model.bands { tr { th scope="row" { "band " (b.id) } td { "score of at least " (b.min_score) } } }
                    @for s in &model.stages { tr { th scope="row" { "stage " (s.id) } td { "the first stage whose condition holds" } } }
                }
            }
        }
    }
}

fn versions(log: &[ModelVersionRow], current: i64) -> Markup {
    html! {
        section aria-labelledby="versions-h" {
            h2 id="versions-h" { "Versions" }
            table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "Name" } th scope="col" { "Set at" } th scope="col" { "Changes" } } }
                tbody {
                    @for v in log.iter().rev() {
                        tr {
                            td { (v.version) @if v.version == current { " (current)" } }
                            td { (v.name) " v" (v.author_version) }
                            td { (v.created_at) }
                            td { @if v.version > 1 { a href=(format!("/model?diff={}", v.version)) { "What changed" } } @else { "first" } }
                        }
                    }
                }
            }
        }
    }
}

/// The lines removed and added between two texts, with their line numbers
/// (a longest-common-subsequence diff; texts past [`MAX_DIFF_LINES`] are
/// not compared).
fn line_diff(before: &str, after: &str) -> Markup {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    if a.len() > MAX_DIFF_LINES || b.len() > MAX_DIFF_LINES {
        return html! { p { "Too long to compare here (over " (MAX_DIFF_LINES) " lines)." } };
    }
    // lcs[i][j]: common lines of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut rows: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            rows.push(('+', j + 1, b[j]));
            j += 1;
        } else {
            rows.push(('-', i + 1, a[i]));
            i += 1;
        }
    }
    html! {
        @if rows.is_empty() { p { "The texts are the same." } } @else {
            table class="diff" {
                thead { tr { th scope="col" { "Change" } th scope="col" { "Line" } th scope="col" { "Text" } } }
                tbody {
                    @for (sign, line, text) in &rows {
                        tr class=(if *sign == '+' { "added" } else { "removed" }) {
                            td { (if *sign == '+' { "added" } else { "removed" }) }
                            td class="num" { (line) }
                            td { code { (text) } }
                        }
                    }
                }
            }
        }
    }
}

/// The editing form, with the problems of the last check if any.
fn editor(visitor: &Visitor, text: &str, problems: &[(Option<usize>, String)]) -> Markup {
    html! {
        section aria-labelledby="edit-h" {
            h2 id="edit-h" { "Change the model" }
            @if !problems.is_empty() {
                div role="alert" class="error" {
                    p { "The model was not changed: " (problems.len()) " problem(s)." }
                    ul id="problems" {
                        @for (line, message) in problems {
                            li { @if let Some(l) = line { "Line " (l) ": " } (message) }
                        }
                    }
                }
            }
            form method="post" action="/model/preview" {
                input type="hidden" name="csrf" value=(visitor.csrf);
                label for="model-text" { "Model file (TOML)" }
                textarea id="model-text" name="text" rows="24" spellcheck="false" { (text) }
                button type="submit" { "Check and preview what would move" }
            }
        }
    }
}

/// The line a problem's place points at: a `rule 'x'`, `dimension 'x'`,
/// `band 'x'` or `stage 'x'` is found by its `id = "x"` line.
fn problem_line(text: &str, place: &str) -> Option<usize> {
    let id = place.split('\'').nth(1)?;
    let wanted = [format!("id = \"{id}\""), format!("id=\"{id}\"")];
    text.lines()
        .position(|l| {
            wanted
                .iter()
                .any(|w| l.trim_start().starts_with(w.as_str()))
        })
        .map(|i| i + 1)
}

/// Every problem of a model text, with its line when it has one.
fn problems(text: &str, e: &ModelError) -> Vec<(Option<usize>, String)> {
    match e {
        ModelError::Syntax {
            line,
            column,
            message,
        } => vec![(Some(*line), format!("column {column}: {message}"))],
        ModelError::Invalid(list) => list
            .iter()
            .map(|p| (problem_line(text, &p.place), p.to_string()))
            .collect(),
    }
}

/// The model form's fields.
#[derive(Deserialize)]
pub struct ModelForm {
    csrf: String,
    text: String,
}

fn checked_text(f: &ModelForm) -> Result<String, PageError> {
    if f.text.len() > MAX_TEXT {
        return Err(PageError::bad(format!(
            "the model text is over {MAX_TEXT} bytes"
        )));
    }
    Ok(f.text.replace("\r\n", "\n"))
}

/// `POST /model/preview`: checks the text; shows its problems at their
/// lines, or what applying it would move.
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<ModelForm>,
) -> Result<Response, PageError> {
    let visitor = form_visitor(&state, &headers, &f.csrf, Scope::Admin).await?;
    let text = checked_text(&f)?;
    if let Err(e) = Model::from_toml(&text) {
        let content = html! {
            h1 { "Model" }
            (editor(&visitor, &text, &problems(&text, &e)))
        };
        return Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            layout::page("Model: problems", &visitor, "/model", content),
        )
            .into_response());
    }
    let now = state.now();
    let t = text.clone();
    let change = state
        .with_store(move |s| Ok(s.set_model(&t, now, true)?))
        .await?;
    let content = html! {
        h1 { "Preview of the new model" }
        (moves(&change))
        form method="post" action="/model/apply" {
            input type="hidden" name="csrf" value=(visitor.csrf);
            input type="hidden" name="text" value=(text);
            button type="submit" { "Apply: a new version, everyone re-scored" }
            " " a href="/model" { "Cancel" }
        }
        details {
            summary { "The text to apply" }
            pre { code { (text) } }
        }
    };
    Ok(layout::page("Model preview", &visitor, "/model", content).into_response())
}

/// What a model change moves, as tables.
fn moves(change: &ModelChange) -> Markup {
    html! {
        p id="moved" { (change.moved) " leads would change band or stage." }
        div class="cards" {
            @for (title, counts) in [("Bands", &change.bands), ("Stages", &change.stages)] {
                table {
                    caption { (title) }
                    thead { tr { th scope="col" { "" } th scope="col" { "Before" } th scope="col" { "After" } } }
                    tbody { @for (k, (a, b)) in counts { tr { th scope="row" { (k) } td class="num" { (a) } td class="num" { (b) } } } }
                }
            }
        }
        @if !change.movers.is_empty() {
            table {
                caption { "Biggest movers" }
                thead { tr { th scope="col" { "Lead" } th scope="col" { "Score before" } th scope="col" { "After" } } }
                tbody {
                    @for (id, a, b) in &change.movers {
                        tr { th scope="row" { a href=(format!("/leads/{}", encode(id))) { (id) } } td class="num" { (score_text(*a)) } td class="num" { (score_text(*b)) } }
                    }
                }
            }
        }
    }
}

/// `POST /model/apply`: stores the text as the next version and re-scores
/// everyone.
pub async fn apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<ModelForm>,
) -> Result<Response, PageError> {
    form_visitor(&state, &headers, &f.csrf, Scope::Admin).await?;
    let text = checked_text(&f)?;
    let now = state.now();
    state
        .with_store(move |s| Ok(s.set_model(&text, now, false)?))
        .await?;
    Ok(Redirect::to("/model").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_point_at_their_lines() {
        let text = "name = \"m\"\n[[dimension]]\nid = \"fit\"\n[[rule]]\nid = \"bad\"\ndimension = \"nope\"\npoints = 1\n";
        let e = Model::from_toml(text).unwrap_err();
        let p = problems(text, &e);
        assert!(
            p.iter()
                .any(|(line, m)| *line == Some(5) && m.contains("bad")),
            "{p:?}"
        );
        let syntax = "name = \n";
        let e = Model::from_toml(syntax).unwrap_err();
        assert_eq!(problems(syntax, &e)[0].0, Some(1));
    }

    #[test]
    fn the_diff_names_added_and_removed_lines() {
        let d = line_diff("a\nb\nc\n", "a\nx\nc\n").into_string();
        assert!(d.contains("removed") && d.contains("added"), "{d}");
        assert!(line_diff("a\n", "a\n").into_string().contains("the same"));
    }
}
