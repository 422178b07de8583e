//! Requests that only read never wait for the writer: while the writing
//! handle is busy (a large event batch, a tick, a model change), score,
//! contact, leaderboard and health requests are answered from the reading
//! handles, with every write committed before them.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long the test keeps the writer busy.
const BUSY: Duration = Duration::from_secs(3);

#[test]
fn reads_are_answered_while_the_writer_is_busy() {
    let common::Fixture {
        dir: _dir,
        state,
        admin,
        read,
    } = common::fixture();
    common::runtime().block_on(async move {
        let server = common::start(state.clone()).await;
        let base = server.base.clone();
        let client = reqwest::Client::new();
        let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
            // Writes with the admin key, reads with the read key.
            let key = if body.is_some() { &admin } else { &read };
            let mut request = client
                .request(method, format!("{base}{path}"))
                .bearer_auth(key);
            if let Some(b) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            async move {
                let response = request.send().await.expect("an answer");
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
        };
        let events = json!([
            {"id": "e1", "contact_id": "c1", "type": "demo_request", "timestamp": "2026-06-29T11:00:00Z"}
        ]);
        let (status, _) = call(reqwest::Method::POST, "/v1/events", Some(events)).await;
        assert_eq!(status, 200);

        // The writing handle is taken for BUSY, as by a long transaction.
        let busy = tokio::spawn({
            let state = state.clone();
            async move {
                state
                    .with_store(|_| {
                        std::thread::sleep(BUSY);
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        for path in [
            "/v1/contacts/c1/score?explain=true",
            "/v1/contacts/c1",
            "/v1/leads?limit=10",
            "/v1/transitions",
            "/healthz",
        ] {
            let (status, body) = call(reqwest::Method::GET, path, None).await;
            assert_eq!(status, 200, "{path}: {body}");
            if path.starts_with("/v1/contacts/c1/score") {
                // The acknowledged event is in the score read beside the writer.
                assert!(body["score"].as_f64().unwrap_or(0.0) > 0.0, "{body}");
            }
        }
        let waited = started.elapsed();
        assert!(
            waited < BUSY / 2,
            "reads took {waited:?} while the writer was busy: they waited for it"
        );
        assert!(!busy.is_finished(), "the writer was not busy all along");
        busy.await.expect("writer task").expect("writer");
        server.stop().await;
    });
}
