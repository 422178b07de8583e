//! Webhooks: subscriptions managed over the API, and the sender that works
//! through the durable outbox. Every body is signed like Stripe's:
//! `Leadscore-Signature: t=UNIX_SECONDS,v1=HEX` where `HEX` is the
//! HMAC-SHA256, keyed with the subscription's secret, of `t + "." + body`.
//! A receiver recomputes it, compares in constant time, and refuses old
//! timestamps (docs/webhooks.md).
//!
//! Delivery is at least once, in order per contact (a contact's next
//! delivery waits for the one before), retried with exponential backoff and
//! jitter, dead after `MAX_ATTEMPTS` tries; everything is in the database,
//! so a restart resumes where the last run stopped.

use std::time::Duration;

use axum::Json;
use axum::extract::State;

use crate::extract::P;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use leadscore_store::Scope;
use leadscore_store::{Due, WEBHOOK_KINDS as KINDS};
use serde::Deserialize;
use sha2::Sha256;

use crate::auth::require;
use crate::error::ApiError;
use crate::state::AppState;

/// The signature header's value for a body sent at `t` (Unix seconds).
pub fn sign(secret: &str, t: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex = leadscore_store::hex(&mac.finalize().into_bytes());
    format!("t={t},v1={hex}")
}

pub(crate) fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Delay before try `attempt + 1`: 2^attempt seconds (at most an hour),
/// times a jitter in [0.5, 1.5) drawn from the delivery number and time.
pub fn backoff(attempt: i64, seq: i64) -> Duration {
    let base = 2f64.powi(attempt.clamp(0, 12) as i32).min(3600.0);
    let mut x = (seq as u64 ^ wall_ns() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    let jitter = 0.5 + (x % 1000) as f64 / 1000.0;
    Duration::from_secs_f64(base * jitter)
}

async fn deliver(client: &reqwest::Client, due: &Due) -> Result<(), String> {
    let t = wall_ns() / 1_000_000_000;
    let response = client
        .post(&due.url)
        .header("content-type", "application/json")
        .header(
            "leadscore-signature",
            sign(&due.secret, t, &due.delivery.body),
        )
        .header("leadscore-delivery", due.delivery.seq.to_string())
        .body(due.delivery.body.clone())
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", response.status().as_u16()))
    }
}

/// Works through the outbox until `stop` says so.
pub async fn sender(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot make an HTTP client: no webhook delivery will be made");
            return;
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let due = match state
            .with_store(|s| Ok(s.due_deliveries(wall_ns(), 64)?))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e.message, "reading the webhook outbox failed");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {},
                _ = stop.changed() => {},
            }
            continue;
        }
        // A subscription with a segment gets only its members' changes
        // (membership checked now, at delivery).
        let now = state.now();
        let checks: Vec<(i64, Option<String>, String)> = due
            .iter()
            .map(|d| {
                (
                    d.delivery.seq,
                    d.segment.clone(),
                    d.delivery.contact.clone(),
                )
            })
            .collect();
        let skipped: Vec<i64> = state
            .with_store(move |s| {
                let mut out = Vec::new();
                for (seq, segment, contact) in checks {
                    let Some(name) = segment else { continue };
                    let member = match s.segment(&name)? {
                        Some(def) => s.contact_in(&def, &contact, now)?,
                        None => false,
                    };
                    if !member {
                        s.delivery_skipped(seq, wall_ns())?;
                        out.push(seq);
                    }
                }
                Ok(out)
            })
            .await
            .unwrap_or_default();
        let due: Vec<Due> = due
            .into_iter()
            .filter(|d| !skipped.contains(&d.delivery.seq))
            .collect();
        let results = futures_join(&client, &due).await;
        for (d, result) in due.iter().zip(results) {
            let seq = d.delivery.seq;
            let outcome = match result {
                Ok(()) => {
                    state.metrics.webhook("delivered");
                    state
                        .with_store(move |s| Ok(s.delivered(seq, wall_ns())?))
                        .await
                }
                Err(e) => {
                    let next = wall_ns() + backoff(d.delivery.attempts, seq).as_nanos() as i64;
                    let dead = state
                        .with_store(move |s| Ok(s.delivery_failed(seq, &e, next)?))
                        .await;
                    state.metrics.webhook(if matches!(dead, Ok(true)) {
                        "dead"
                    } else {
                        "failed"
                    });
                    dead.map(|_| ())
                }
            };
            let _ = outcome;
        }
    }
}

/// Sends a set of due deliveries concurrently (they are of different
/// contacts, or of different subscriptions).
async fn futures_join(client: &reqwest::Client, due: &[Due]) -> Vec<Result<(), String>> {
    let mut tasks = Vec::with_capacity(due.len());
    for d in due {
        let (client, d) = (client.clone(), d.clone());
        tasks.push(tokio::spawn(async move { deliver(&client, &d).await }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

/// A new subscription.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    /// `band`, `stage`, `disqualified` (default: all).
    events: Option<Vec<String>>,
    /// Only contacts in this segment.
    segment: Option<String>,
}

/// A new subscription's URL (trimmed) and event kinds (all when `None`),
/// or what is wrong with them: the rules of `POST /v1/webhooks` and of the
/// web app's form.
pub(crate) fn check_subscription(
    url: &str,
    events: Option<Vec<String>>,
) -> Result<(String, Vec<String>), ApiError> {
    let url = url.trim().to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2000 {
        return Err(ApiError::bad(
            "invalid_url",
            "an http:// or https:// URL of at most 2000 bytes",
            Some("body.url"),
        ));
    }
    let kinds = events.unwrap_or_else(|| KINDS.iter().map(|k| k.to_string()).collect());
    if kinds.is_empty() {
        return Err(ApiError::bad(
            "invalid_events",
            "name at least one of band, stage, disqualified",
            Some("body.events"),
        ));
    }
    if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
        return Err(ApiError::bad(
            "invalid_events",
            format!("{bad:?} is not band, stage or disqualified"),
            Some("body.events"),
        ));
    }
    Ok((url, kinds))
}

/// `POST /v1/webhooks`: subscribes a URL; the answer holds the signing
/// secret, shown once.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: crate::extract::Sent,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require(&state, &headers, Scope::Admin).await?;
    let body = body.checked()?;
    let w: NewWebhook = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(
            "invalid_json",
            format!("the body is not a subscription: {e}"),
            Some("body"),
        )
    })?;
    let (url, kinds) = check_subscription(&w.url, w.events)?;
    let now = state.now();
    let segment = w.segment;
    let (hook, secret) = state
        .with_store(move |s| {
            s.add_webhook(&url, &kinds, segment.as_deref(), now)
                .map_err(|e| match e {
                    leadscore_store::StoreError::Segment(m) => {
                        ApiError::bad("unknown_segment", m, Some("body.segment"))
                    }
                    other => other.into(),
                })
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            serde_json::json!({"id": hook.id, "url": hook.url, "events": hook.kinds, "segment": hook.segment, "secret": secret}),
        ),
    ))
}

/// `GET /v1/webhooks`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Admin).await?;
    let hooks = state.read_now(|s| Ok(s.webhooks()?)).await?;
    let items: Vec<serde_json::Value> = hooks
        .iter()
        .map(|h| {
            serde_json::json!({"id": h.id, "url": h.url, "events": h.kinds, "created_at": h.created_at.to_string(),
                "removed_at": h.removed_at.map(|t| t.to_string())})
        })
        .collect();
    Ok(Json(serde_json::json!({"items": items})))
}

/// `DELETE /v1/webhooks/{id}`.
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<i64>,
) -> Result<StatusCode, ApiError> {
    require(&state, &headers, Scope::Admin).await?;
    let now = state.now();
    if state
        .with_store(move |s| Ok(s.remove_webhook(id, now)?))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_webhook",
            format!("no live subscription {id}"),
        ))
    }
}

/// `GET /v1/webhooks/{id}/deliveries`: the delivery log, newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, Scope::Admin).await?;
    let rows = state.read(move |s| Ok(s.deliveries(id, 1000)?)).await?;
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|d| {
            serde_json::json!({"delivery": d.seq, "contact": d.contact, "state": d.state, "attempts": d.attempts,
                "last_error": d.last_error, "body": serde_json::from_str::<serde_json::Value>(&d.body).unwrap_or_default()})
        })
        .collect();
    Ok(Json(serde_json::json!({"items": items})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_time_dot_body() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") is the
        // RFC 4231-style known value; here with our "t." prefix as part of the message.
        let s = sign("key", 0, "The quick brown fox jumps over the lazy dog");
        assert!(s.starts_with("t=0,v1="));
        assert_eq!(s.len(), "t=0,v1=".len() + 64);
        assert_ne!(sign("key", 1, "x"), sign("key", 2, "x"));
        assert_ne!(sign("a", 1, "x"), sign("b", 1, "x"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt, 7).as_secs_f64();
            let base = 2f64.powi(attempt.min(12) as i32).min(3600.0);
            assert!(d >= base * 0.5 && d < base * 1.5, "{attempt}: {d}");
        }
    }
}
