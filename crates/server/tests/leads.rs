//! The leaderboard (`GET /v1/leads`) and a segment's members keep only a
//! page's worth of a ranked list: walking them page by page, with any page
//! size, sort, filter or segment, must still give every contact exactly
//! once, in order, with the same total.

mod common;

use std::collections::BTreeMap;

use serde_json::{Value, json};

#[test]
fn walking_the_leaderboard_gives_every_contact_once_in_order() {
    let common::Fixture {
        dir: _dir,
        state,
        admin,
        read,
    } = common::fixture();
    common::runtime().block_on(async move {
        let server = common::start(state).await;
        let base = server.base.clone();
        let client = reqwest::Client::new();
        // 30 contacts: some with events (several share a score), some bare
        // (all at the same score, so ties decide their order).
        let types = ["page_view", "email_click", "webinar_attended", "demo_request"];
        let mut events = Vec::new();
        for c in 0..20 {
            for k in 0..(c % 4) {
                events.push(json!({
                    "id": format!("e{c}-{k}"),
                    "contact_id": format!("c{c:02}"),
                    "type": types[(c + k) % types.len()],
                    "timestamp": format!("2026-06-{:02}T10:00:00Z", 20 + k),
                    "properties": {"url": "/pricing"},
                }));
            }
        }
        let contacts: Vec<Value> = (0..30)
            .map(|c| json!({"id": format!("c{c:02}"), "attributes": {"job_title": if c % 3 == 0 { "VP Sales" } else { "Engineer" }}}))
            .collect();
        // Posts a JSON body with the admin key; returns the status.
        let post = |path: &str, body: Value| {
            let request = client
                .post(format!("{base}{path}"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(body.to_string());
            async move { request.send().await.expect("an answer").status().as_u16() }
        };
        for (path, body) in [("/v1/contacts", Value::from(contacts)), ("/v1/events", Value::from(events))] {
            assert_eq!(post(path, body).await, 200, "{path}");
        }
        let get = |path: String| {
            let request = client.get(format!("{base}{path}")).bearer_auth(&read);
            async move {
                let response = request.send().await.expect("an answer");
                assert_eq!(response.status().as_u16(), 200, "{path}");
                serde_json::from_str::<Value>(&response.text().await.expect("a body")).expect("JSON")
            }
        };
        // Every contact's score and band, from the complete list.
        let all = get("/v1/leads?sort=id&limit=1000".into()).await;
        let mut known: BTreeMap<String, (f64, String)> = BTreeMap::new();
        for item in all["items"].as_array().expect("items") {
            known.insert(
                item["id"].as_str().expect("id").to_owned(),
                (item["score"].as_f64().expect("score"), item["band"].as_str().unwrap_or("").to_owned()),
            );
        }
        assert_eq!((known.len(), all["total"].as_u64()), (30, Some(30)));
        let distinct: std::collections::BTreeSet<u64> = known.values().map(|(s, _)| s.to_bits()).collect();
        assert!(distinct.len() > 2 && distinct.len() < 30, "ties and differences: {distinct:?}");
        let hot_band = known.values().map(|(_, b)| b.clone()).max().unwrap_or_default();

        // Two saved segments: one the ranked scan serves (a band), one
        // that looks at events (`had_event`: an email click since
        // 2026-06-21, the clock being at 2026-06-30).
        for body in [
            json!({"name": "top-band", "band": hot_band}),
            json!({"name": "clickers", "had_event": {"type": "email_click", "within_days": 9}}),
        ] {
            assert_eq!(post("/v1/segments", body.clone()).await, 201, "{body}");
        }
        // Contact c's events are k = 0 .. c % 4, of type (c + k) % 4, on June 20 + k.
        let clicked = |id: &str| {
            let c: usize = id[1..].parse().expect("a number");
            c < 20 && (1..c % 4).any(|k| (c + k) % types.len() == 1)
        };
        let in_top = |band: &str| band == hot_band;
        type Keep<'a> = Box<dyn Fn(&str, &str) -> bool + 'a>;
        let cases: Vec<(String, &str, Keep)> = vec![
            ("/v1/leads?sort=-score".into(), "-score", Box::new(|_, _| true)),
            ("/v1/leads?sort=score".into(), "score", Box::new(|_, _| true)),
            ("/v1/leads?sort=id".into(), "id", Box::new(|_, _| true)),
            (format!("/v1/leads?sort=-score&band={hot_band}"), "-score", Box::new(|_, b| in_top(b))),
            ("/v1/leads?sort=score&segment=top-band".into(), "score", Box::new(|_, b| in_top(b))),
            ("/v1/leads?sort=-score&segment=clickers".into(), "-score", Box::new(|id, _| clicked(id))),
            ("/v1/segments/top-band/members?".into(), "-score", Box::new(|_, b| in_top(b))),
            ("/v1/segments/clickers/members?".into(), "-score", Box::new(|id, _| clicked(id))),
        ];
        for (path, sort, keep) in &cases {
            let mut want: Vec<(String, f64)> = known
                .iter()
                .filter(|(id, (_, b))| keep(id, b))
                .map(|(id, (s, _))| (id.clone(), *s))
                .collect();
            match *sort {
                "-score" => want.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0))),
                "score" => want.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0))),
                _ => want.sort_by(|a, b| a.0.cmp(&b.0)),
            }
            for limit in [1, 4, 7, 30, 1000] {
                let mut seen: Vec<(String, f64)> = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
                    let page = get(format!("{path}&limit={limit}{after}")).await;
                    assert_eq!(page["total"].as_u64(), Some(want.len() as u64), "{path} {limit}");
                    let items = page["items"].as_array().expect("items");
                    assert!(items.len() <= limit);
                    for item in items {
                        seen.push((item["id"].as_str().expect("id").to_owned(), item["score"].as_f64().expect("score")));
                    }
                    match page["next_cursor"].as_str() {
                        Some(c) => {
                            assert_eq!(items.len(), limit, "a full page before the last");
                            cursor = Some(c.to_owned());
                        }
                        None => break,
                    }
                }
                assert_eq!(seen, want, "{path}, limit {limit}");
            }
        }
        for (name, count) in [
            ("top-band", known.values().filter(|(_, b)| in_top(b)).count()),
            ("clickers", known.keys().filter(|id| clicked(id)).count()),
        ] {
            assert!(count > 0 && count < 30, "{name} is a real filter: {count}");
            let segment = get(format!("/v1/segments/{name}")).await;
            assert_eq!(segment["members"].as_u64(), Some(count as u64), "{name}");
        }
        server.stop().await;
    });
}
