//! A learned model as a dimension of the scoring model: trained with
//! `leadscore train` on generated contacts, named in the model file, and
//! then giving the same numbers through `score`, `explain`, `predict` and
//! the database.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{leadscore, stderr, stdout};
use leadscore_learn::sample::Rng;
use leadscore_learn::table::{DEFAULT_MISSING, Table};
use serde_json::Value;

const NOW: &str = "2026-07-01T00:00:00Z";

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Generated contacts and events, a training file with outcomes drawn from
/// the contacts' industry and size, a trained model, and a scoring model
/// with a predictive dimension.
fn setup(dir: &Path) {
    ok(leadscore([
        "generate",
        "--contacts",
        "2000",
        "--events",
        "20000",
        "--out",
        &path(dir),
    ]));
    let missing: Vec<String> = DEFAULT_MISSING.iter().map(|s| s.to_string()).collect();
    let table = Table::read_csv(&dir.join("contacts.csv"), &missing).unwrap();
    let industry = table.column("industry").unwrap();
    let size = table.column("company_size").unwrap();
    let mut rng = Rng::new(3);
    let mut csv = String::from("industry,company_size,lead_source,converted\n");
    let source = table.column("lead_source").unwrap();
    for r in 0..table.rows() {
        let mut z: f64 = -1.5;
        if industry.get(r) == Some("software") {
            z += 1.5;
        }
        if size
            .get(r)
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|s| s > 200.0)
        {
            z += 1.0;
        }
        let y = rng.unit() < 1.0 / (1.0 + (-z).exp());
        csv.push_str(&format!(
            "{},{},{},{}\n",
            industry.get(r).unwrap_or(""),
            size.get(r).unwrap_or(""),
            source.get(r).unwrap_or(""),
            u8::from(y)
        ));
    }
    std::fs::write(dir.join("history.csv"), csv).unwrap();
    ok(leadscore([
        "train",
        "--data",
        &path(&dir.join("history.csv")),
        "--label",
        "converted",
        "--out",
        &path(&dir.join("likelihood.json")),
    ]));
    let model = common::starter_with_likelihood();
    std::fs::write(dir.join("model.toml"), model).unwrap();
}

fn db_cmd(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("LEADSCORE_DB", db)
        .env("LEADSCORE_NOW", NOW)
        .output()
        .unwrap()
}

#[test]
fn a_predictive_dimension_scores_explains_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let model = path(&d.join("model.toml"));
    let contacts = path(&d.join("contacts.csv"));
    let events = path(&d.join("events.csv"));
    let scored = ok(leadscore([
        "score",
        "-q",
        "--model",
        &model,
        "--contacts",
        &contacts,
        "--events",
        &events,
        "--as-of",
        NOW,
    ]));
    let predicted = ok(leadscore([
        "predict",
        "--predictor",
        &path(&d.join("likelihood.json")),
        "--data",
        &contacts,
        "--id",
        "id",
        "--format",
        "json",
    ]));
    let mut lines = 0;
    for (s, p) in scored.lines().zip(predicted.lines()) {
        let s: Value = serde_json::from_str(s).unwrap();
        let p: Value = serde_json::from_str(p).unwrap();
        assert_eq!(s["id"], p["id"]);
        let likelihood = s["dimensions"]["likelihood"].as_f64().unwrap();
        let probability = p["probability"].as_f64().unwrap();
        assert!(
            (likelihood - 100.0 * probability).abs() < 1e-9,
            "{likelihood} vs {probability}"
        );
        lines += 1;
    }
    assert_eq!(lines, 2000);
    // The predictive dimension weighs into the score: the score differs
    // from a 1:1 fit/engagement score wherever likelihood is not the same.
    let first: Value = serde_json::from_str(scored.lines().next().unwrap()).unwrap();
    let dims = &first["dimensions"];
    let expected = (dims["fit"].as_f64().unwrap()
        + dims["engagement"].as_f64().unwrap()
        + 2.0 * dims["likelihood"].as_f64().unwrap())
        / 4.0;
    if first["disqualified"] == false {
        assert!((first["score"].as_f64().unwrap() - expected).abs() < 1e-9);
    }

    // explain shows the prediction's reasons.
    let id = first["id"].as_str().unwrap().to_owned();
    let text = ok(leadscore([
        "explain",
        "--model",
        &model,
        "--contacts",
        &contacts,
        "--events",
        &events,
        "--contact",
        &id,
        "--as-of",
        NOW,
    ]));
    assert!(text.contains("predicted by likelihood.json"), "{text}");
    let json: Value = serde_json::from_str(&ok(leadscore([
        "explain",
        "--model",
        &model,
        "--contacts",
        &contacts,
        "--events",
        &events,
        "--contact",
        &id,
        "--as-of",
        NOW,
        "--format",
        "json",
    ])))
    .unwrap();
    let line = json["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "likelihood")
        .unwrap();
    let factors = line["predicted"]["top_positive"].as_array().unwrap().len()
        + line["predicted"]["top_negative"].as_array().unwrap().len();
    assert!(factors > 0, "{line}");

    // The database keeps the learned model: it scores the same, even after
    // the file is gone.
    let db = d.join("l.db");
    ok(db_cmd(&db, &["init", "--model", &model]));
    ok(db_cmd(&db, &["import", "contacts", &contacts]));
    ok(db_cmd(&db, &["import", "events", &events]));
    std::fs::remove_file(d.join("likelihood.json")).unwrap();
    let from_db = ok(db_cmd(&db, &["scores", "--format", "json"]));
    assert_eq!(from_db, scored, "database scores equal the batch scores");
    let explained = ok(db_cmd(&db, &["explain", &id]));
    assert!(
        explained.contains("predicted by likelihood.json"),
        "{explained}"
    );
    assert!(ok(db_cmd(&db, &["check"])).contains("ok"));
}

#[test]
fn predictive_dimension_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |text: &str| {
        std::fs::write(d.join("m.toml"), text).unwrap();
        leadscore(["validate", &path(&d.join("m.toml"))])
    };
    let refused = |text: &str, needles: &[&str]| {
        let o = write(text);
        assert_eq!(o.status.code(), Some(2));
        let e = stderr(&o);
        assert!(needles.iter().all(|n| e.contains(n)), "{e}");
    };
    let dim = "[[dimension]]\nid = \"p\"\nkind = ";
    refused(
        &format!("{dim}\"predictive\"\nmodel = \"nope.json\"\n"),
        &["dimension 'p'", "nope.json"],
    );
    refused(
        &format!("{dim}\"predictive\"\n"),
        &["needs model = \"FILE\""],
    );
    refused(&format!("{dim}\"learned\"\n"), &["unknown kind 'learned'"]);
    std::fs::write(d.join("bad.json"), "{}").unwrap();
    refused(
        &format!(
            "{dim}\"predictive\"\nmodel = \"bad.json\"\n[[rule]]\nid = \"r\"\ndimension = \"p\"\npoints = 5\n"
        ),
        &["rule 'r' field 'dimension'", "predictive"],
    );
    refused(
        &format!("{dim}\"predictive\"\nmodel = \"bad.json\"\n"),
        &["not a leadscore predictive model"],
    );
}
