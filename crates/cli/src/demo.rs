//! `leadscore demo`: generate demo contacts and events, score them with the
//! starter model, show the hottest leads and why, then load them into an
//! embedded lead database (`leadscore.db` beside the files) and check it
//! gives the same numbers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use leadscore_batch::generate::{
    DEFAULT_END, EventOrder, GenerateFormat, GenerateOptions, generate,
};
use leadscore_batch::output::by_score;
use leadscore_batch::{ContactTable, explain_files, score_files};
use leadscore_core::{Model, Timestamp};

use leadscore_store::{ImportOptions, ScoreFilter, Store};

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
            order: EventOrder::Time,
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
    let db = dir.join("leadscore.db");
    let agree = load_database(&db, &table, &scores.cards, &written, end)?;
    let exe = invocation();
    let key = {
        let mut store = Store::open(&db)?;
        store
            .create_key("demo", leadscore_store::Scope::Admin, end)?
            .1
    };
    let db = quoted(&db.display().to_string());
    say!("\nTry next:");
    say!(
        "  {exe} score --model {} --contacts {} --events {} --as-of {end} --top 20",
        quoted(&model_path.display().to_string()),
        quoted(&written.contacts_path.display().to_string()),
        quoted(&written.events_path.display().to_string())
    );
    say!("  LEADSCORE_NOW={end} {exe} scores --db {db} --band hot --top 20");
    say!("  {exe} history --db {db} {}", agree.unwrap_or_default());
    say!(
        "\nOpen the web app (the demo's data ends at {end}, so the service's clock is set there):"
    );
    say!("  LEADSCORE_NOW={end} {exe} serve --db {db} --bind 127.0.0.1:8080");
    say!("  then open http://127.0.0.1:8080/ and sign in with this admin key: {key}");
    Ok(())
}

/// How this program was started, to print commands that work as shown:
/// its path relative to the current folder when it is inside it (as after
/// `cargo run`), else absolute.
fn invocation() -> String {
    let path = match (std::env::current_exe(), std::env::current_dir()) {
        (Ok(exe), Ok(cwd)) => exe
            .strip_prefix(&cwd)
            .map(|p| p.to_path_buf())
            .unwrap_or(exe),
        (Ok(exe), Err(_)) => exe,
        _ => PathBuf::from("leadscore"),
    };
    quoted(&path.display().to_string())
}

/// A word for the shell: as it is when it needs no quotes.
fn quoted(word: &str) -> String {
    if word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-:=+,@".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Builds the embedded database from the demo files (a fresh one each
/// run), prints how long it took and whether every stored score equals the
/// batch scorer's. Returns the top contact's id.
fn load_database(
    db: &std::path::Path,
    table: &ContactTable,
    cards: &[leadscore_core::ScoreCard],
    written: &leadscore_batch::generate::Written,
    end: Timestamp,
) -> Result<Option<String>, Failure> {
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        if file.exists() {
            std::fs::remove_file(&file)
                .map_err(|e| Failure::other(format!("{}: {e}", file.display())))?;
        }
    }
    let started = Instant::now();
    let mut store = Store::create(db, STARTER_MODEL, end)?;
    let options = ImportOptions::at(end);
    let mut quiet = |_: u64, _: u64, _: u64| {};
    store.import_contacts(&written.contacts_path, &options, &mut quiet)?;
    let imported = store.import_events(&written.events_path, &options, &mut quiet)?;
    let stored = store.scores(end, &ScoreFilter::default())?;
    let batch: std::collections::HashMap<&str, &leadscore_core::ScoreCard> =
        (0..cards.len()).map(|i| (table.id(i), &cards[i])).collect();
    let same = stored
        .iter()
        .filter(|s| batch.get(s.id.as_str()).is_some_and(|c| **c == s.card))
        .count();
    say!(
        "\nLoaded them into the embedded database {} ({} events stored, durable commits) in {:.2} s;",
        db.display(),
        imported.stored,
        started.elapsed().as_secs_f64()
    );
    say!(
        "its live scores equal the ones above for {same} of {} contacts.",
        cards.len()
    );
    if same != cards.len() || stored.len() != cards.len() {
        return Err(Failure::other(format!(
            "the database disagrees with the batch scorer on {} contacts",
            cards.len() - same
        )));
    }
    let top = by_score(cards, Some(1));
    Ok(top.first().map(|&i| table.id(i).to_owned()))
}
