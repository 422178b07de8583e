//! `leadscore train` and `leadscore predict` on a sample of the UCI bank
//! marketing data (tests/learning/bank-marketing, CC BY 4.0).

mod common;

use common::{fixtures, leadscore, stderr, stdout};
use serde_json::Value;

fn sample(name: &str) -> String {
    fixtures()
        .join("learning/bank-marketing")
        .join(name)
        .display()
        .to_string()
}

fn train_json(dir: &std::path::Path, extra: &[&str]) -> Value {
    let out = dir.join("model.json");
    let mut args = vec![
        "train".to_owned(),
        "--data".into(),
        sample("train.csv"),
        "--label".into(),
        "y".into(),
        "--drop".into(),
        "duration".into(),
        "--test".into(),
        sample("test.csv"),
        "--out".into(),
        out.display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = leadscore(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("one JSON document")
}

#[test]
fn train_reports_cross_validation_and_test_measures_repeatably() {
    let dir = tempfile::tempdir().unwrap();
    let report = train_json(dir.path(), &[]);
    let auc = report["test"]["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.68 && auc < 1.0, "test AUC {auc}");
    assert_eq!(report["leads"], 2500);
    assert_eq!(report["cv"]["folds"], 5);
    assert_eq!(report["cv"]["candidates"].as_array().unwrap().len(), 5);
    assert_eq!(report["test"]["deciles"].as_array().unwrap().len(), 10);
    assert!(
        report["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "job = student")
    );
    assert!(
        !report["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("duration"))
    );
    // Fixed seeds: the same report again (apart from the time taken).
    let mut again = train_json(dir.path(), &[]);
    let mut first = report.clone();
    for key in ["seconds", "fit_seconds"] {
        first[key] = Value::Null;
        again[key] = Value::Null;
    }
    assert!(first == again, "a second run with the same seed differs");
    // Another seed gives other folds.
    let other = train_json(dir.path(), &["--seed", "7"]);
    assert_ne!(
        other["cv"]["candidates"][0]["fold_roc_auc"],
        report["cv"]["candidates"][0]["fold_roc_auc"]
    );
}

#[test]
fn predict_scores_and_explains_every_row() {
    let dir = tempfile::tempdir().unwrap();
    train_json(dir.path(), &["--learner", "trees"]);
    let model = dir.path().join("model.json").display().to_string();
    let o = leadscore([
        "predict",
        "--predictor",
        &model,
        "--data",
        &sample("test.csv"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,probability,likelihood"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1000);
    assert!(rows[0].starts_with("2,"), "{}", rows[0]);
    for row in &rows {
        let p: f64 = row.split(',').nth(1).unwrap().parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
    let o = leadscore([
        "predict",
        "--predictor",
        &model,
        "--data",
        &sample("test.csv"),
        "--format",
        "json",
        "--explain",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    let factors = first["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 3);
    assert!(
        factors[0]["contribution"].as_f64().unwrap().abs()
            >= factors[2]["contribution"].as_f64().unwrap().abs()
    );
    assert!(
        factors
            .iter()
            .all(|f| f["column"] != "duration" && f["column"] != "y")
    );
}

#[test]
fn bad_learning_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json").display().to_string();
    let train = sample("train.csv");
    let o = leadscore(["train", "--data", &train, "--label", "Y", "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no column \"Y\", did you mean \"y\"?"),
        "{}",
        stderr(&o)
    );
    let o = leadscore([
        "train", "--data", &train, "--label", "y", "--drop", "durashun", "--out", &out,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--drop") && stderr(&o).contains("durashun"),
        "{}",
        stderr(&o)
    );
    let o = leadscore(["train", "--data", &train, "--label", "job", "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("train.csv:2: column \"job\""),
        "{}",
        stderr(&o)
    );
    // Too little data: a clear refusal, not a model.
    let small = dir.path().join("small.csv");
    let text = std::fs::read_to_string(&train).unwrap();
    std::fs::write(
        &small,
        text.lines().take(151).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let o = leadscore([
        "train",
        "--data",
        small.to_str().unwrap(),
        "--label",
        "y",
        "--out",
        &out,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("too little data") && stderr(&o).contains("150 outcomes"),
        "{}",
        stderr(&o)
    );
    assert!(!std::path::Path::new(&out).exists());
    // A model that needs a column the data lacks.
    train_json(dir.path(), &["--learner", "linear"]);
    let model = dir.path().join("model.json").display().to_string();
    let lacking = dir.path().join("lacking.csv");
    std::fs::write(&lacking, "age,job\n30,admin.\n").unwrap();
    let o = leadscore([
        "predict",
        "--predictor",
        &model,
        "--data",
        lacking.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("lacking.csv: no column \"marital\""),
        "{}",
        stderr(&o)
    );
    let o = leadscore([
        "predict",
        "--predictor",
        lacking.to_str().unwrap(),
        "--data",
        &train,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a model file"), "{}", stderr(&o));
}
