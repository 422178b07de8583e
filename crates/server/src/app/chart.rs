//! Charts drawn by the server as SVG: nothing to load, nothing to run, and
//! each comes with a text equivalent (an `aria-label` summary, and a table
//! for the larger ones). Coordinates are in the SVG's own units; the page's
//! CSS sizes it.

use leadscore_core::Timestamp;
use maud::{Markup, html};

/// One decimal, for coordinates and labels.
fn f1(x: f64) -> String {
    format!("{x:.1}")
}

/// A score (0-100) as text for people.
pub fn score_text(score: f64) -> String {
    format!("{score:.1}")
}

/// A small line of scores over time (0-100), oldest first.
pub fn sparkline(scores: &[f64]) -> Markup {
    let (w, h) = (100.0, 24.0);
    let n = scores.len().max(2) - 1;
    let points: Vec<String> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = w * i as f64 / n as f64;
            let y = h - 1.0 - (h - 2.0) * s.clamp(0.0, 100.0) / 100.0;
            format!("{},{}", f1(x), f1(y))
        })
        .collect();
    let label = match (scores.first(), scores.last()) {
        (Some(a), Some(b)) => format!(
            "score over the last 30 days: from {} to {}",
            score_text(*a),
            score_text(*b)
        ),
        _ => "no score history".to_string(),
    };
    html! {
        svg class="spark" viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(label) {
            polyline points=(points.join(" ")) fill="none" stroke="currentColor" stroke-width="1.5" {}
        }
    }
}

/// A band threshold drawn across a chart.
pub struct Threshold<'a> {
    /// The band's id.
    pub name: &'a str,
    /// Its `min_score`.
    pub min_score: f64,
}

/// A contact's score over time: the line, each event as a mark on the
/// time axis, and the band thresholds; with a table of the same points.
pub fn score_chart(
    points: &[(Timestamp, f64)],
    events: &[(Timestamp, String)],
    thresholds: &[Threshold<'_>],
) -> Markup {
    let (w, h, left, bottom) = (640.0, 240.0, 36.0, 24.0);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return html! { p { "No score history." } };
    };
    let (t0, t1) = (
        first.0.0 as f64,
        (last.0.0 as f64).max(first.0.0 as f64 + 1.0),
    );
    let x = |t: Timestamp| left + (w - left - 8.0) * (t.0 as f64 - t0) / (t1 - t0);
    let y = |s: f64| 8.0 + (h - bottom - 8.0) * (1.0 - s.clamp(0.0, 100.0) / 100.0);
    let line: Vec<String> = points
        .iter()
        .map(|(t, s)| format!("{},{}", f1(x(*t)), f1(y(*s))))
        .collect();
    let summary = format!(
        "Score from {} on {} to {} on {}; {} events; band thresholds {}.",
        score_text(first.1),
        day(first.0),
        score_text(last.1),
        day(last.0),
        events.len(),
        thresholds
            .iter()
            .map(|t| format!("{} at {}", t.name, t.min_score))
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        figure class="chart" {
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(summary) {
                @for s in [0.0, 50.0, 100.0] {
                    text x="2" y=(f1(y(s) + 4.0)) class="axis" { (s) }
                }
                @for t in thresholds {
                    line x1=(left) x2=(w - 8.0) y1=(f1(y(t.min_score))) y2=(f1(y(t.min_score))) class="threshold" {}
                    text x=(w - 10.0) y=(f1(y(t.min_score) - 3.0)) text-anchor="end" class="axis" { (t.name) }
                }
                polyline points=(line.join(" ")) class="score-line" {}
                @for (t, ty) in events {
                    @if t.0 as f64 >= t0 && t.0 as f64 <= t1 {
                        circle cx=(f1(x(*t))) cy=(f1(h - bottom + 6.0)) r="3" class="event-mark" {
                            title { (ty) " at " (t) }
                        }
                    }
                }
                text x=(left) y=(h - 2.0) class="axis" { (day(first.0)) }
                text x=(w - 8.0) y=(h - 2.0) text-anchor="end" class="axis" { (day(last.0)) }
            }
            figcaption { (summary) }
            details {
                summary { "The chart's points as a table" }
                table {
                    thead { tr { th scope="col" { "Time" } th scope="col" { "Score" } } }
                    tbody {
                        @for (t, s) in points {
                            tr { td { (t) } td { (score_text(*s)) } }
                        }
                    }
                }
            }
        }
    }
}

/// Contacts per score bucket (`counts[i]` holds scores in `[10 i, 10 i +
/// 10)`, the last one 100 too), as bars with a table.
pub fn histogram(counts: &[u64; 10]) -> Markup {
    let (w, h) = (400.0, 160.0);
    let most = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar_w = w / 10.0;
    let label = |i: usize| {
        if i == 9 {
            "90-100".to_string()
        } else {
            format!("{}-{}", i * 10, i * 10 + 9)
        }
    };
    let summary = format!(
        "Contacts by score: {}.",
        (0..10)
            .map(|i| format!("{} {}", label(i), counts[i]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    html! {
        figure class="chart" {
            svg viewBox=(format!("0 0 {w} {}", h + 16.0)) role="img" aria-label=(summary) {
                @for (i, c) in counts.iter().enumerate() {
                    @let bh = (h - 4.0) * *c as f64 / most;
                    rect x=(f1(i as f64 * bar_w + 2.0)) y=(f1(h - bh)) width=(f1(bar_w - 4.0)) height=(f1(bh)) class="bar" {
                        title { (label(i)) ": " (c) }
                    }
                    text x=(f1(i as f64 * bar_w + bar_w / 2.0)) y=(h + 12.0) text-anchor="middle" class="axis" { (i * 10) }
                }
            }
            figcaption { (summary) }
        }
    }
}

/// The day of a time, `YYYY-MM-DD` (UTC).
pub fn day(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(..10).unwrap_or(&s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_say_in_words_what_they_draw() {
        let spark = sparkline(&[10.0, 55.5]).into_string();
        assert!(spark.contains("from 10.0 to 55.5"), "{spark}");
        let day0 = Timestamp(1_780_000_000_000_000_000);
        let day9 = Timestamp(day0.0 + 9 * 86_400_000_000_000);
        let chart = score_chart(
            &[(day0, 20.0), (day9, 80.0)],
            &[(day9, "<b>demo</b>".to_string())],
            &[Threshold {
                name: "hot",
                min_score: 70.0,
            }],
        )
        .into_string();
        assert!(chart.contains("Score from 20.0"), "{chart}");
        assert!(chart.contains("hot at 70"), "{chart}");
        assert!(
            chart.contains("&lt;b&gt;demo&lt;/b&gt;"),
            "escaped: {chart}"
        );
        let mut counts = [0u64; 10];
        counts[9] = 3;
        assert!(histogram(&counts).into_string().contains("90-100 3"));
    }
}
