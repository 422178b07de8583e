//! Learning end to end from the lead database: `generate --outcomes` draws
//! `deal_won` events from a known formula; `train --outcome-event` must come
//! close to the formula's own AUC, and not above it (that would mean it
//! reads the future).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{leadscore, stderr, stdout};
use leadscore_learn::metrics::roc_auc;
use serde_json::Value;

const NOW: &str = "2026-06-30T00:00:00Z";

fn db_cmd(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("LEADSCORE_DB", db)
        .env("LEADSCORE_NOW", NOW)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn a_model_trained_from_the_database_approaches_the_true_formula() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    ok(leadscore([
        "generate",
        "--contacts",
        "12000",
        "--events",
        "200000",
        "--outcomes",
        "--out",
        &p("gen"),
    ]));
    // The formula's own AUC, from the true probabilities.
    let truth = std::fs::read_to_string(d.join("gen/outcomes-truth.csv")).unwrap();
    let (mut probability, mut converted) = (Vec::new(), Vec::new());
    for line in truth.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        probability.push(f[1].parse::<f64>().unwrap());
        converted.push(f[2].parse::<u8>().unwrap());
    }
    let formula = roc_auc(&probability, &converted);
    let db = d.join("l.db");
    let starter = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/starter-model.toml");
    ok(db_cmd(
        &db,
        &["init", "--model", &starter.display().to_string()],
    ));
    ok(db_cmd(&db, &["import", "contacts", &p("gen/contacts.csv")]));
    ok(db_cmd(&db, &["import", "events", &p("gen/events.csv")]));
    let out = ok(db_cmd(
        &db,
        &[
            "train",
            "--outcome-event",
            "deal_won",
            "--drop",
            "email,phone,first_name,company",
            "--out",
            &p("m.json"),
            "--format",
            "json",
        ],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["conversions"].as_u64().unwrap(),
        converted.iter().map(|&y| u64::from(y)).sum::<u64>()
    );
    let learned = report["cv"]["metrics"]["roc_auc"].as_f64().unwrap();
    assert!(
        learned > formula - 0.06 && learned < formula + 0.02,
        "learned {learned:.4}, formula {formula:.4}"
    );
    // The features it found are the formula's: industry, and company size
    // (as the column or through the model's large-company rule).
    let top: Vec<String> = report["importance"].as_array().unwrap()[..6]
        .iter()
        .map(|i| i["column"].as_str().unwrap().to_owned())
        .collect();
    assert!(top.iter().any(|c| c == "industry"), "{top:?}");
    assert!(
        top.iter()
            .any(|c| c == "company_size" || c == "rule: company-large points"),
        "{top:?}"
    );
    // The outcome itself is never a feature.
    assert!(
        !report["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().contains("deal_won"))
    );
    // Such a model reads events: it cannot be a predictive dimension.
    let model = d.join("with-likelihood.toml");
    std::fs::write(
        &model,
        "[[dimension]]\nid = \"likelihood\"\nkind = \"predictive\"\nmodel = \"m.json\"\n",
    )
    .unwrap();
    let o = leadscore(["validate", &model.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("reads event aggregates"),
        "{}",
        stderr(&o)
    );
    let o = db_cmd(&db, &["train", "--outcome-event", "deal_lost"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no \"deal_lost\" event"),
        "{}",
        stderr(&o)
    );
}
