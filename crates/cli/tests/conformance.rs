//! Every conformance case of the spec, through the real binary, with CSV,
//! NDJSON and mixed inputs.

mod common;

use common::*;

fn cases() -> Vec<std::path::PathBuf> {
    let mut cases: Vec<_> = std::fs::read_dir(fixtures().join("conformance"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.toml").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 3, "conformance fixtures are missing");
    cases
}

fn run_case(case: &std::path::Path, contacts: &str, events: &[&str]) {
    let as_of = std::fs::read_to_string(case.join("as_of.txt")).unwrap();
    let mut args: Vec<String> = vec![
        "score".into(),
        "--quiet".into(),
        "--model".into(),
        case.join("model.toml").display().to_string(),
        "--contacts".into(),
        case.join(contacts).display().to_string(),
        "--as-of".into(),
        as_of.trim().into(),
        "--format".into(),
        "json".into(),
    ];
    for e in events {
        args.push("--events".into());
        args.push(case.join(e).display().to_string());
    }
    let out = leadscore(&args);
    assert!(out.status.success(), "{}: {}", case.display(), stderr(&out));
    let expected = std::fs::read_to_string(case.join("expected.jsonl")).unwrap();
    assert_same_scores(
        &stdout(&out),
        &expected,
        &format!("{} ({contacts}, {events:?})", case.display()),
    );
}

#[test]
fn conformance_csv() {
    for case in cases() {
        run_case(&case, "contacts.csv", &["events.csv"]);
    }
}

#[test]
fn conformance_ndjson() {
    for case in cases() {
        run_case(&case, "contacts.ndjson", &["events.ndjson"]);
    }
}

#[test]
fn conformance_mixed_and_repeated_inputs() {
    for case in cases() {
        // The same events twice over, in two formats: duplicates by id.
        run_case(&case, "contacts.ndjson", &["events.csv", "events.ndjson"]);
    }
}

/// Scores a case's CSV files with extra arguments.
fn score_csv(case: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let as_of = std::fs::read_to_string(case.join("as_of.txt")).unwrap();
    let mut args: Vec<String> = [
        "score",
        "-q",
        "--model",
        &case.join("model.toml").display().to_string(),
        "--contacts",
        &case.join("contacts.csv").display().to_string(),
        "--events",
        &case.join("events.csv").display().to_string(),
        "--as-of",
        as_of.trim(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    leadscore(&args)
}

#[test]
fn csv_output_has_the_same_numbers() {
    let case = &cases()[0];
    let out = score_csv(case, &["--format", "csv"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,fit,engagement,score,band,stage,disqualified"
    );
    let expected = std::fs::read_to_string(case.join("expected.jsonl")).unwrap();
    for (row, exp) in lines.zip(expected.lines()) {
        let exp: serde_json::Value = serde_json::from_str(exp).unwrap();
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[0], exp["id"].as_str().unwrap());
        let score: f64 = cells[3].parse().unwrap();
        assert!((score - exp["score"].as_f64().unwrap()).abs() < 1e-9);
        assert_eq!(cells[4], exp["band"].as_str().unwrap_or(""));
        assert_eq!(cells[5], exp["stage"].as_str().unwrap_or(""));
    }
}

#[test]
fn sort_and_top_order_by_score() {
    let case = &cases()[2];
    let out = score_csv(case, &["--top", "5"]);
    assert!(out.status.success());
    let scores: Vec<f64> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["score"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(scores.len(), 5);
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let expected = std::fs::read_to_string(case.join("expected.jsonl")).unwrap();
    let best = expected
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["score"]
                .as_f64()
                .unwrap()
        })
        .fold(f64::MIN, f64::max);
    assert!((scores[0] - best).abs() < 1e-9);
}
