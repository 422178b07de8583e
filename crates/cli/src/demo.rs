//! `leadscore demo`: generate a demo database, score it with the starter
//! model, and show the hottest leads and why.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use leadscore_batch::generate::{DEFAULT_END, GenerateFormat, GenerateOptions, generate};
use leadscore_batch::output::by_score;
use leadscore_batch::{ContactTable, explain_files, score_files};
use leadscore_core::{Model, Timestamp};

use crate::Failure;

/// The starter model shipped in `examples/`.
pub const STARTER_MODEL: &str = include_str!("../../../examples/starter-model.toml");

pub fn run(contacts: u64, out: Option<PathBuf>) -> Result<(), Failure> {
    let dir = out.unwrap_or_else(|| std::env::temp_dir().join("leadscore-demo"));
    let end = Timestamp::parse(DEFAULT_END).map_err(Failure::other)?;
    let model = Model::from_toml(STARTER_MODEL).map_err(Failure::other)?;
    let model_path = dir.join("starter-model.toml");
    let started = Instant::now();
    let written = generate(
        &GenerateOptions {
            contacts,
            events: contacts * 20,
            seed: 42,
            end,
            format: GenerateFormat::Csv,
            outcomes: false,
        },
        &dir,
    )
    .map_err(|e| Failure::other(format!("{}: {e}", dir.display())))?;
    std::fs::write(&model_path, STARTER_MODEL)
        .map_err(|e| Failure::other(format!("{}: {e}", model_path.display())))?;
    say!(
        "Generated {} contacts and {} events in {}",
        written.contacts,
        written.events,
        dir.display()
    );
    let table = ContactTable::load(
        std::slice::from_ref(&written.contacts_path),
        &model.vocabulary,
    )?;
    let events = vec![written.events_path.clone()];
    let scores = score_files(&model, &table, &events, end)?;
    say!(
        "Scored them with the starter model as of {end} in {:.2} s.\n",
        started.elapsed().as_secs_f64()
    );

    let mut bands: BTreeMap<String, usize> = BTreeMap::new();
    let mut stages: BTreeMap<String, usize> = BTreeMap::new();
    for c in &scores.cards {
        *bands
            .entry(c.band_name(&model).unwrap_or("none").to_string())
            .or_default() += 1;
        *stages
            .entry(c.stage_name(&model).unwrap_or("none").to_string())
            .or_default() += 1;
    }
    let list = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    say!("Bands:  {}", list(&bands));
    say!("Stages: {}\n", list(&stages));

    say!("Top 10 leads:");
    say!(
        "{:>4}  {:<10} {:>6}  {:<9} {:<5} {:>5} {:>10}",
        "rank",
        "contact",
        "score",
        "band",
        "stage",
        "fit",
        "engagement"
    );
    let top = by_score(&scores.cards, Some(10));
    for (rank, &i) in top.iter().enumerate() {
        let c = &scores.cards[i];
        say!(
            "{:>4}  {:<10} {:>6.1}  {:<9} {:<5} {:>5.1} {:>10.1}",
            rank + 1,
            table.id(i),
            c.score,
            c.band_name(&model).unwrap_or("-"),
            c.stage_name(&model).unwrap_or("-"),
            c.dimensions[0],
            c.dimensions[1]
        );
    }
    if let Some(&best) = top.first() {
        say!("\nWhy is {} on top?\n", table.id(best));
        let e = explain_files(&model, &table, best as u32, &events, end)?;
        say!("{e}");
    }
    say!("\nTry next:");
    say!(
        "  leadscore score --model {} --contacts {} --events {} --as-of {end} --top 20",
        model_path.display(),
        written.contacts_path.display(),
        written.events_path.display()
    );
    Ok(())
}
