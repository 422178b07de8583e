//! Prometheus text metrics: requests by route and status with their
//! latencies, events ingested, group commits and how long each held the
//! writer, webhook deliveries, the database queue depth.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Counts of durations (seconds) in the `BUCKETS` bounds: one route's
/// answers, or the writer's group commits.
#[derive(Default, Clone)]
struct Histogram {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

impl Histogram {
    /// Writes the histogram's lines: `NAME_bucket{LABELS,le=..}`, `_sum`,
    /// `_count` (`labels` without braces, may be empty).
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        // `{labels,extra}`, or nothing when both are empty.
        let braces = |extra: &str| {
            let all: Vec<&str> = [labels, extra]
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect();
            if all.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", all.join(","))
            }
        };
        let bounds = BUCKETS.iter().map(|b| b.to_string());
        for (b, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(
                out,
                "{name}_bucket{} {b}",
                braces(&format!("le=\"{bound}\""))
            );
        }
        let _ = writeln!(out, "{name}_bucket{} {}", braces("le=\"+Inf\""), self.count);
        let _ = writeln!(out, "{name}_sum{} {}", braces(""), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(""), self.count);
    }

    /// Adds another histogram's counts to this one.
    fn add(&mut self, other: &Histogram) {
        self.count += other.count;
        self.sum += other.sum;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }

    /// Counts one duration, in seconds.
    fn observe(&mut self, seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        for (b, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *b += 1;
            }
        }
    }
}

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    events_accepted: AtomicU64,
    events_duplicate: AtomicU64,
    events_rejected: AtomicU64,
    queue: AtomicI64,
    groups: AtomicU64,
    webhooks: Mutex<BTreeMap<&'static str, u64>>,
    grouped_requests: AtomicU64,
    grouped_events: AtomicU64,
    commit_seconds: Mutex<Histogram>,
    store_seconds: Mutex<Histogram>,
    stored_events: AtomicU64,
    inbox_events: AtomicI64,
}

impl Metrics {
    /// Records one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut routes) = self.routes.lock() {
            routes
                .entry((method.to_owned(), route.to_owned(), status))
                .or_default()
                .observe(seconds);
        }
    }

    /// Records the outcome of an events batch.
    pub fn events(&self, accepted: u64, duplicate: u64, rejected: u64) {
        self.events_accepted.fetch_add(accepted, Ordering::Relaxed);
        self.events_duplicate
            .fetch_add(duplicate, Ordering::Relaxed);
        self.events_rejected.fetch_add(rejected, Ordering::Relaxed);
    }

    /// Records one group commit of `requests` requests holding `events`
    /// events.
    pub fn group(&self, requests: u64, events: u64) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.grouped_requests.fetch_add(requests, Ordering::Relaxed);
        self.grouped_events.fetch_add(events, Ordering::Relaxed);
    }

    /// Records how long one group commit held the writer, in seconds:
    /// the duplicate check, the inbox append and its flush.
    pub fn commit_time(&self, seconds: f64) {
        if let Ok(mut c) = self.commit_seconds.lock() {
            c.observe(seconds);
        }
    }

    /// Records one transaction storing `events` inbox events in the
    /// database (matching, scoring, writing, the commit), in seconds.
    pub fn store_time(&self, events: u64, seconds: f64) {
        self.stored_events.fetch_add(events, Ordering::Relaxed);
        if let Ok(mut c) = self.store_seconds.lock() {
            c.observe(seconds);
        }
    }

    /// Events acknowledged into the inbox (positive) or stored from it
    /// (negative).
    pub fn inbox(&self, events: i64) {
        self.inbox_events.fetch_add(events, Ordering::Relaxed);
    }

    /// Records one webhook delivery try (`delivered`, `failed`, `dead`).
    pub fn webhook(&self, outcome: &'static str) {
        if let Ok(mut w) = self.webhooks.lock() {
            *w.entry(outcome).or_default() += 1;
        }
    }

    /// A database task starts waiting.
    pub fn queue_enter(&self) {
        self.queue.fetch_add(1, Ordering::Relaxed);
    }

    /// A database task is done.
    pub fn queue_leave(&self) {
        self.queue.fetch_sub(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP leadscore_http_requests_total Requests answered, by method, route and status.\n");
        out.push_str("# TYPE leadscore_http_requests_total counter\n");
        let routes = self.routes.lock().map(|r| r.clone()).unwrap_or_default();
        for ((m, r, s), v) in &routes {
            let _ = writeln!(
                out,
                "leadscore_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {}",
                v.count
            );
        }
        out.push_str(
            "# HELP leadscore_http_request_duration_seconds Time to answer, by method and route.\n",
        );
        out.push_str("# TYPE leadscore_http_request_duration_seconds histogram\n");
        let mut by_route: BTreeMap<(String, String), Histogram> = BTreeMap::new();
        for ((m, r, _), v) in &routes {
            by_route.entry((m.clone(), r.clone())).or_default().add(v);
        }
        for ((m, r), v) in &by_route {
            v.write(
                &mut out,
                "leadscore_http_request_duration_seconds",
                &format!("method=\"{m}\",route=\"{r}\""),
            );
        }
        out.push_str("# HELP leadscore_events_total Events received, by outcome.\n");
        out.push_str("# TYPE leadscore_events_total counter\n");
        for (what, n) in [
            ("accepted", &self.events_accepted),
            ("duplicate", &self.events_duplicate),
            ("rejected", &self.events_rejected),
        ] {
            let _ = writeln!(
                out,
                "leadscore_events_total{{outcome=\"{what}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        for (name, help, n) in [
            (
                "leadscore_event_commits_total",
                "Durable appends of event groups to the inbox (group commits).",
                &self.groups,
            ),
            (
                "leadscore_event_commit_requests_total",
                "Requests whose events went into a group commit.",
                &self.grouped_requests,
            ),
            (
                "leadscore_event_commit_events_total",
                "Events that went into a group commit.",
                &self.grouped_events,
            ),
        ] {
            single(&mut out, name, "counter", help, n.load(Ordering::Relaxed));
        }
        for (name, help, histogram) in [
            (
                "leadscore_event_commit_duration_seconds",
                "Time the writer spent on one group commit (duplicate check, inbox append, fsync).",
                &self.commit_seconds,
            ),
            (
                "leadscore_event_store_duration_seconds",
                "Time one transaction storing inbox events in the database took (matching, scoring, writing, fsync).",
                &self.store_seconds,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} histogram");
            let h = histogram.lock().map(|c| c.clone()).unwrap_or_default();
            h.write(&mut out, name, "");
        }
        single(
            &mut out,
            "leadscore_event_stored_total",
            "counter",
            "Events stored in the database from the inbox.",
            self.stored_events.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            "leadscore_inbox_events",
            "gauge",
            "Events acknowledged and not yet stored in the database (the inbox's queue).",
            self.inbox_events.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP leadscore_webhook_deliveries_total Webhook delivery tries, by outcome.\n",
        );
        out.push_str("# TYPE leadscore_webhook_deliveries_total counter\n");
        let hooks = self.webhooks.lock().map(|w| w.clone()).unwrap_or_default();
        for (k, v) in hooks {
            let _ = writeln!(
                out,
                "leadscore_webhook_deliveries_total{{outcome=\"{k}\"}} {v}"
            );
        }
        single(
            &mut out,
            "leadscore_database_queue_depth",
            "gauge",
            "Database tasks running or waiting.",
            self.queue.load(Ordering::Relaxed),
        );
        out
    }
}

/// Writes a metric family of one unlabelled value: its help, its type
/// (`counter` or `gauge`) and the value.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_belongs_to_a_family_with_help_and_type() {
        let m = Metrics::default();
        m.request("GET", "/healthz", 200, 0.001);
        m.events(3, 1, 0);
        m.group(2, 4);
        m.commit_time(0.001);
        m.store_time(4, 0.01);
        m.inbox(4);
        m.webhook("delivered");
        let text = m.render();
        let mut help = std::collections::HashSet::new();
        let mut kinds = std::collections::HashMap::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["#", "HELP", name, ..] => {
                    assert!(help.insert(*name), "{name} has two HELP lines");
                }
                ["#", "TYPE", name, kind] => {
                    assert!(kinds.insert(*name, *kind).is_none(), "{name} typed twice");
                }
                _ => {
                    let name = line.split(['{', ' ']).next().unwrap_or_default();
                    let family = kinds
                        .keys()
                        .find(|f| {
                            name == **f
                                || (kinds[*f] == "histogram"
                                    && ["_bucket", "_sum", "_count"]
                                        .iter()
                                        .any(|s| name == format!("{f}{s}")))
                        })
                        .unwrap_or_else(|| panic!("{name} has no TYPE line before it"));
                    assert!(help.contains(family), "{family} has no HELP line");
                }
            }
        }
        assert!(kinds.len() >= 10, "{text}");
    }

    #[test]
    fn a_commit_time_counts_in_every_bucket_at_or_above_it() {
        let m = Metrics::default();
        m.commit_time(0.003);
        m.commit_time(0.0004);
        let text = m.render();
        for (bound, n) in [
            ("0.0005", 1),
            ("0.002", 1),
            ("0.005", 2),
            ("2.5", 2),
            ("+Inf", 2),
        ] {
            let line =
                format!("leadscore_event_commit_duration_seconds_bucket{{le=\"{bound}\"}} {n}\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains("leadscore_event_commit_duration_seconds_count 2\n"));
    }

    #[test]
    fn request_times_are_summed_over_statuses_by_method_and_route() {
        let m = Metrics::default();
        m.request("POST", "/v1/events", 200, 0.004);
        m.request("POST", "/v1/events", 400, 0.0001);
        let text = m.render();
        let labels = "method=\"POST\",route=\"/v1/events\"";
        for line in [
            format!("leadscore_http_request_duration_seconds_bucket{{{labels},le=\"0.0005\"}} 1\n"),
            format!("leadscore_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2\n"),
            format!("leadscore_http_request_duration_seconds_count{{{labels}}} 2\n"),
            format!("leadscore_http_requests_total{{{labels},status=\"400\"}} 1\n"),
        ] {
            assert!(text.contains(&line), "{line} in {text}");
        }
    }
}
