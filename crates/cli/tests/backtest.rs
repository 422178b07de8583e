//! `leadscore backtest` and `leadscore calibrate`: a points model measured
//! against real outcomes (the UCI bank-marketing sample) and against
//! outcome events after a cutoff.

mod common;

use std::path::Path;

use common::{fixtures, leadscore, stderr, stdout};
use serde_json::Value;

const AS_OF: &str = "2026-01-01T00:00:00Z";

/// The bank sample with an `id` column (contacts need one).
fn with_ids(name: &str, out: &Path) -> String {
    let text =
        std::fs::read_to_string(fixtures().join("learning/bank-marketing").join(name)).unwrap();
    let mut lines = text.lines();
    let mut csv = format!("id,{}\n", lines.next().unwrap());
    for (i, l) in lines.enumerate() {
        csv.push_str(&format!("b{i},{l}\n"));
    }
    std::fs::write(out, csv).unwrap();
    out.display().to_string()
}

fn model() -> String {
    fixtures()
        .join("learning/bank-marketing/points-model.toml")
        .display()
        .to_string()
}

/// `leadscore backtest` of `contacts` with outcome column `y`, as JSON.
fn backtest_json(model: &str, contacts: &str) -> Value {
    json(&[
        "backtest",
        "--model",
        model,
        "--contacts",
        contacts,
        "--label",
        "y",
        "--as-of",
        AS_OF,
        "--format",
        "json",
    ])
}

fn json(args: &[&str]) -> Value {
    let o = leadscore(args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn backtest_measures_bands_stages_and_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let test = with_ids("test.csv", &dir.path().join("test.csv"));
    let m = model();
    let b = backtest_json(&m, &test);
    assert_eq!(b["leads"], 1000);
    assert_eq!(b["conversions"], 118);
    let auc = b["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.6 && auc < 0.9, "{auc}");
    let bands = b["bands"].as_array().unwrap();
    assert_eq!(
        bands
            .iter()
            .map(|g| g["leads"].as_u64().unwrap())
            .sum::<u64>(),
        1000
    );
    assert_eq!(
        bands
            .iter()
            .map(|g| g["conversions"].as_u64().unwrap())
            .sum::<u64>(),
        118
    );
    // The hot band converts better than the cold one.
    assert!(
        bands[0]["conversion_rate"].as_f64().unwrap()
            > bands[2]["conversion_rate"].as_f64().unwrap()
    );
    // Each threshold's caught + missed is every converter.
    for t in b["thresholds"].as_array().unwrap() {
        assert_eq!(
            t["caught"].as_u64().unwrap() + t["missed"].as_u64().unwrap(),
            118,
            "{t}"
        );
    }
    let o = leadscore([
        "backtest",
        "--model",
        &m,
        "--contacts",
        &test,
        "--as-of",
        AS_OF,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--label COLUMN") && stderr(&o).contains("--outcome-event"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn calibrate_learns_points_that_rank_better_and_writes_a_valid_model() {
    let dir = tempfile::tempdir().unwrap();
    let train = with_ids("train.csv", &dir.path().join("train.csv"));
    let test = with_ids("test.csv", &dir.path().join("test.csv"));
    let out = dir.path().join("calibrated.toml").display().to_string();
    let m = model();
    let c = json(&[
        "calibrate",
        "--model",
        &m,
        "--contacts",
        &train,
        "--label",
        "y",
        "--as-of",
        AS_OF,
        "--out",
        &out,
        "--format",
        "json",
    ]);
    let rules = c["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 6);
    assert!(
        rules
            .iter()
            .all(|r| r["new_points"].as_f64().unwrap().fract() == 0.0)
    );
    // A previous success is the strongest sign in this data.
    let top = rules
        .iter()
        .max_by(|a, b| {
            a["new_points"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["new_points"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(top["rule"], "earlier-campaign-success");
    assert!(c["roc_auc_after"].as_f64().unwrap() >= c["roc_auc_before"].as_f64().unwrap() - 0.005);
    let o = leadscore(["validate", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("version = 2") && written.contains("[[rule]]"));
    // Held out: the learned points rank the test leads at least as well.
    let before = backtest_json(&m, &test);
    let after = backtest_json(&out, &test);
    assert!(
        after["roc_auc"].as_f64().unwrap() >= before["roc_auc"].as_f64().unwrap() - 0.01,
        "{} vs {}",
        after["roc_auc"],
        before["roc_auc"]
    );
}

#[test]
fn outcome_events_after_the_cutoff_are_the_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let contacts = d.join("contacts.csv");
    std::fs::write(
        &contacts,
        "id,job_title\na,VP Sales\nb,Intern\nc,CEO\nd,Intern\n",
    )
    .unwrap();
    let events = d.join("events.csv");
    std::fs::write(
        &events,
        "id,contact_id,type,timestamp\n\
         e1,a,deal_won,2026-02-01T00:00:00Z\n\
         e2,b,deal_won,2025-12-01T00:00:00Z\n\
         e3,c,deal_won,2026-09-01T00:00:00Z\n\
         e4,d,page_view,2025-12-20T00:00:00Z\n",
    )
    .unwrap();
    let model = d.join("m.toml");
    std::fs::write(
        &model,
        "[[dimension]]\nid = \"fit\"\n[[band]]\nid = \"hot\"\nmin_score = 20\n[[band]]\nid = \"cold\"\nmin_score = 0\n\
         [[rule]]\nid = \"senior\"\ndimension = \"fit\"\npoints = 30\nwhen = { attribute = \"job_title\", matches = \"(?i)vp|ceo\" }\n",
    )
    .unwrap();
    let b = json(&[
        "backtest",
        "--model",
        &model.display().to_string(),
        "--contacts",
        &contacts.display().to_string(),
        "--events",
        &events.display().to_string(),
        "--outcome-event",
        "deal_won",
        "--horizon-days",
        "90",
        "--as-of",
        AS_OF,
        "--format",
        "json",
    ]);
    // b converted before the cutoff (left out); a within 90 days; c too late.
    assert_eq!(b["left_out"], 1);
    assert_eq!(b["leads"], 3);
    assert_eq!(b["conversions"], 1);
    assert_eq!(b["bands"][0]["name"], "hot");
    assert_eq!(b["bands"][0]["leads"], 2);
    assert_eq!(b["bands"][0]["conversions"], 1);
    assert_eq!(b["roc_auc"], 0.75);
}
