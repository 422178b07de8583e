//! `leadscore explain` and `leadscore score` on the spec's worked example.

mod common;

use common::*;

fn example(file: &str) -> String {
    fixtures()
        .join("spec-example")
        .join(file)
        .display()
        .to_string()
}

fn explain(format: &str) -> std::process::Output {
    leadscore([
        "explain",
        "--model",
        &example("model.toml"),
        "--contacts",
        &example("contacts.csv"),
        "--events",
        &example("events.csv"),
        "--contact",
        "ana",
        "--as-of",
        "2026-05-01T00:00:00Z",
        "--format",
        format,
    ])
}

#[test]
fn the_worked_example_scores_as_the_spec_says() {
    let out = leadscore([
        "score",
        "-q",
        "--model",
        &example("model.toml"),
        "--contacts",
        &example("contacts.csv"),
        "--events",
        &example("events.csv"),
        "--as-of",
        "2026-05-01T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = std::fs::read_to_string(example("expected.jsonl")).unwrap();
    assert_same_scores(&stdout(&out), &expected, "spec example");
}

#[test]
fn explanation_json_tells_every_decision() {
    let out = explain("json");
    assert!(out.status.success(), "{}", stderr(&out));
    let e: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(e["id"], "ana");
    assert_eq!(e["band"], "warm");
    assert_eq!(e["stage"], "mql");
    assert!((e["score"].as_f64().unwrap() - 58.92618410569691).abs() < 1e-9);
    let rules: Vec<&str> = e["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["senior-title", "free-email", "pricing-page"]);
    let pricing = &e["rules"][2];
    let fates: Vec<(&str, &str)> = pricing["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ev| (ev["id"].as_str().unwrap(), ev["fate"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fates,
        [
            ("e1", "counted"),
            ("e2", "counted"),
            ("e3", "limit_reached"),
            ("e5", "counted")
        ]
    );
    let c1 = pricing["events"][0]["contribution"].as_f64().unwrap();
    assert!((c1 - 15.874).abs() < 1e-3, "{c1}");
    let eng = &e["dimensions"][1];
    assert_eq!(eng["id"], "engagement");
    assert!((eng["raw"].as_f64().unwrap() - 71.90157880759587).abs() < 1e-9);
    assert_eq!(eng["clamped"], false);
    assert!(e["band_reason"].as_str().unwrap().contains("'warm'"));
    assert!(e["stage_reason"].as_str().unwrap().contains("score >= 40"));
}

#[test]
fn explanation_text_reads_for_a_salesperson() {
    let out = explain("text");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "Lead ana: score 58.93 / 100, band warm, stage mql",
        "+30 senior-title",
        "-10 free-email",
        "+71.9 pricing-page",
        "e3 (39 days ago): left out: the rule's limit was already reached",
        "e5 (0 days ago): +40 points",
        "Band: score 58.93 reaches 'warm'",
        "'hot' needs 70 (11.07 more)",
        "Stage: 'mql' because score >= 40",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn window_and_as_of_exclusions_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.toml");
    std::fs::write(
        &model,
        "[[dimension]]\nid = \"e\"\nwindow_days = 10\n[[rule]]\nid = \"visit\"\ndimension = \"e\"\non = \"page_view\"\npoints = 5\n",
    )
    .unwrap();
    let contacts = dir.path().join("c.csv");
    std::fs::write(&contacts, "id\nbo\n").unwrap();
    let events = dir.path().join("e.csv");
    std::fs::write(
        &events,
        "id,contact_id,type,timestamp\nold,bo,page_view,2026-01-01T00:00:00Z\nnew,bo,page_view,2026-04-28T00:00:00Z\nlater,bo,page_view,2026-06-01T00:00:00Z\n",
    )
    .unwrap();
    let out = leadscore([
        "explain",
        "--model",
        &model.display().to_string(),
        "--contacts",
        &contacts.display().to_string(),
        "--events",
        &events.display().to_string(),
        "--contact",
        "bo",
        "--as-of",
        "2026-05-01T00:00:00Z",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("old (120 days ago): left out: older than the dimension's window"),
        "{text}"
    );
    assert!(text.contains("new (3 days ago): +5 points"), "{text}");
    assert!(
        text.contains("later (31 days after as-of): left out: after the as-of time"),
        "{text}"
    );
}
