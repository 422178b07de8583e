//! The database commands: init, import, scores, explain, history, model,
//! tick, delete, check.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use leadscore_batch::output::{csv_header, csv_row, json_line};
use leadscore_core::Timestamp;
use leadscore_store::{Filter, ImportOptions, ImportSummary, ScoreFilter, Store, StoreError};

use crate::{Failure, emit};

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Sqlite(_) | StoreError::Io { .. } | StoreError::Corrupt(_) => {
                Failure::other(e)
            }
            _ => Failure::input(e),
        }
    }
}

/// `leadscore import contacts|events FILE`.
#[derive(Subcommand)]
pub enum ImportKind {
    /// Contacts (CSV with an `id` column, or NDJSON): new ones are created,
    /// existing ones get the given attributes.
    Contacts {
        /// The file (.csv, .ndjson or .jsonl).
        file: PathBuf,
        /// Replace each contact's whole attribute set instead of merging.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        options: ImportArgs,
    },
    /// Events (CSV or NDJSON): repeated ids change nothing; events for
    /// unknown contacts create bare contacts.
    Events {
        /// The file (.csv, .ndjson or .jsonl).
        file: PathBuf,
        #[command(flatten)]
        options: ImportArgs,
    },
}

/// Options shared by imports.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Rows per committed transaction.
    #[arg(long, default_value_t = 100_000)]
    batch_size: usize,
    /// Where rejected rows go (default: FILE.rejects.csv).
    #[arg(long)]
    rejects: Option<PathBuf>,
}

/// `leadscore model ...`.
#[derive(Subcommand)]
pub enum ModelCommand {
    /// Validate a model, store it as a new version and re-score everyone.
    Set {
        /// The model file.
        file: PathBuf,
        /// Show what would move, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List stored model versions.
    Log,
    /// Print a stored model version (default: the current one).
    Show {
        /// Database version number.
        version: Option<i64>,
    },
}

/// Output of `scores`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ScoresFormat {
    /// Aligned columns for people.
    Table,
    /// The objects `leadscore score` prints.
    Json,
    /// CSV as `leadscore score --format csv`.
    Csv,
}

/// The fixed time `LEADSCORE_NOW` (RFC 3339) sets, to replay history or
/// test; `None` when it is not set. The one place it is read.
pub fn fixed_now() -> Result<Option<Timestamp>, Failure> {
    match std::env::var("LEADSCORE_NOW") {
        Ok(t) => Timestamp::parse(&t)
            .map(Some)
            .map_err(|e| Failure::input(format!("LEADSCORE_NOW: {e}"))),
        Err(_) => Ok(None),
    }
}

/// The live clock: [`fixed_now`] when set, otherwise the system clock.
pub fn now() -> Result<Timestamp, Failure> {
    match fixed_now()? {
        Some(t) => Ok(t),
        None => crate::as_of(None),
    }
}

/// Opens the database, saying so on standard error when an older layout
/// was migrated.
pub fn open(db: &Path) -> Result<Store, Failure> {
    let store = Store::open(db)?;
    if let Some(from) = store.migrated_from() {
        eprintln!(
            "note: {}: database layout migrated from schema version {from} to {}",
            db.display(),
            leadscore_store::SCHEMA_VERSION
        );
    }
    Ok(store)
}

/// The learned model files a model text's predictive dimensions name
/// (none if it does not parse: the store then reports the model's
/// problems).
fn files_for(
    model_path: &Path,
    text: &str,
) -> Result<Vec<leadscore_learn::predictor::ModelFile>, Failure> {
    match leadscore_core::Model::from_toml(text) {
        Ok(m) => crate::model_files(model_path, &m),
        Err(_) => Ok(Vec::new()),
    }
}

pub fn init(db: &Path, model: &Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string(model)
        .map_err(|e| Failure::input(format!("{}: {e}", model.display())))?;
    let files = files_for(model, &text)?;
    let store = Store::create_with_files(db, &text, &files, now()?).map_err(|e| match e {
        StoreError::Model(m) => Failure::input(format!("{}: {m}", model.display())),
        other => Failure::from(other),
    })?;
    say!(
        "created {} with model '{}' (version 1)",
        db.display(),
        store.model().name
    );
    Ok(())
}

fn progress_bar(what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(&format!(
        "{what} {{bar:30}} {{percent:>3}}% {{msg}} ETA {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

fn report(what: &str, s: &ImportSummary) {
    eprintln!(
        "{what}: {} rows in {:.2} s ({:.0} rows/s): {} stored, {} unchanged, {} rejected, {} contacts created",
        s.rows,
        s.seconds,
        s.rows as f64 / s.seconds.max(1e-9),
        s.stored,
        s.unchanged,
        s.rejected,
        s.contacts_created
    );
    if let Some(p) = &s.rejects_path {
        eprintln!("rejected rows (line, field, reason) are in {}", p.display());
    }
}

pub fn import(db: &Path, kind: ImportKind) -> Result<(), Failure> {
    let mut store = open(db)?;
    let mut options = ImportOptions::at(now()?);
    let (what, file, args) = match &kind {
        ImportKind::Contacts {
            file,
            replace,
            options: args,
        } => {
            options.replace = *replace;
            ("contacts", file, args)
        }
        ImportKind::Events {
            file,
            options: args,
        } => ("events", file, args),
    };
    options.batch_size = args.batch_size.max(1);
    options.rejects = args.rejects.clone();
    let bar = progress_bar(what);
    let started = std::time::Instant::now();
    let mut on_progress = |bytes: u64, size: u64, rows: u64| {
        if let Some(b) = &bar {
            b.set_length(size);
            b.set_position(bytes);
            let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-9);
            b.set_message(format!("{rows} rows, {rate:.0} rows/s"));
        }
    };
    let summary = match kind {
        ImportKind::Contacts { .. } => store.import_contacts(file, &options, &mut on_progress)?,
        ImportKind::Events { .. } => store.import_events(file, &options, &mut on_progress)?,
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    report(what, &summary);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn scores(
    db: &Path,
    as_of: Option<&str>,
    band: Option<String>,
    stage: Option<String>,
    condition: Option<String>,
    sort: bool,
    top: Option<usize>,
    format: ScoresFormat,
) -> Result<(), Failure> {
    let store = open(db)?;
    let at = match as_of {
        Some(_) => crate::as_of(as_of)?,
        None => now()?,
    };
    let filter = ScoreFilter {
        band,
        stage,
        condition: condition
            .map(|c| Filter::parse(&c, store.model()))
            .transpose()?,
        text: None,
    };
    // Highest score first, ties in storage order (as `leadscore score
    // --sort` keeps input order); with `--top`, only those are kept.
    let scores = if sort || top.is_some() {
        store
            .ranked(at, &filter, top.unwrap_or(usize::MAX), |a, b| {
                b.score
                    .card
                    .score
                    .total_cmp(&a.score.card.score)
                    .then(a.place.cmp(&b.place))
            })?
            .items
    } else {
        store.scores(at, &filter)?
    };
    let model = store.model();
    emit(|w| {
        let mut buf = Vec::new();
        match format {
            ScoresFormat::Json => {
                for s in &scores {
                    json_line(&mut buf, model, &s.id, &s.card);
                }
            }
            ScoresFormat::Csv => {
                csv_header(&mut buf, model);
                for s in &scores {
                    csv_row(&mut buf, model, &s.id, &s.card);
                }
            }
            ScoresFormat::Table => {
                let dims: Vec<&str> = model.dimensions.iter().map(|d| d.id.as_str()).collect();
                write!(
                    buf,
                    "{:<16} {:>6}  {:<12} {:<8}",
                    "contact", "score", "band", "stage"
                )?;
                for d in &dims {
                    write!(buf, " {d:>10}")?;
                }
                writeln!(buf)?;
                for s in &scores {
                    let c = &s.card;
                    write!(
                        buf,
                        "{:<16} {:>6.1}  {:<12} {:<8}",
                        s.id,
                        c.score,
                        c.band_name(model).unwrap_or("-"),
                        c.stage_name(model).unwrap_or("-")
                    )?;
                    for v in &c.dimensions {
                        write!(buf, " {v:>10.1}")?;
                    }
                    writeln!(buf)?;
                }
                writeln!(buf, "{} contact(s) as of {at}", scores.len())?;
            }
        }
        w.write_all(&buf)
    })
}

pub fn explain(db: &Path, id: &str, as_of: Option<&str>, json: bool) -> Result<(), Failure> {
    let store = open(db)?;
    let at = match as_of {
        Some(_) => crate::as_of(as_of)?,
        None => now()?,
    };
    let e = store.explain(id, at)?;
    emit(|w| {
        if json {
            serde_json::to_writer_pretty(&mut *w, &e).map_err(std::io::Error::other)?;
            writeln!(w)
        } else {
            write!(w, "{e}")
        }
    })
}

pub fn history(db: &Path, id: &str) -> Result<(), Failure> {
    let store = open(db)?;
    let rows = store.history(id)?;
    emit(|w| {
        for r in &rows {
            let cause = match (&r.cause[..], &r.detail) {
                ("event", Some(id)) => format!("event {id}"),
                ("model", Some(d)) => d.clone(),
                ("decay", _) => "time passing (decay or window)".to_string(),
                ("data", _) => "contact data".to_string(),
                (c, _) => c.to_string(),
            };
            writeln!(
                w,
                "{}  {:<5} {} -> {}  ({cause})",
                r.at,
                r.kind,
                r.from.as_deref().unwrap_or("none"),
                r.to.as_deref().unwrap_or("none")
            )?;
        }
        if rows.is_empty() {
            writeln!(w, "no band or stage transitions recorded for {id}")?;
        }
        Ok(())
    })
}

pub fn model(db: &Path, command: ModelCommand) -> Result<(), Failure> {
    let mut store = open(db)?;
    match command {
        ModelCommand::Set { file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
            let files = files_for(&file, &text)?;
            let started = std::time::Instant::now();
            let change = store
                .set_model_with_files(&text, &files, now()?, dry_run)
                .map_err(|e| match e {
                    StoreError::Model(m) => Failure::input(format!("{}: {m}", file.display())),
                    other => Failure::from(other),
                })?;
            match change.version {
                Some(v) => say!(
                    "model version {v} set; everyone re-scored in {:.2} s",
                    started.elapsed().as_secs_f64()
                ),
                None => say!("dry run: nothing changed"),
            }
            say!("{:<14} {:>9} {:>9}", "band", "before", "after");
            for (b, (x, y)) in &change.bands {
                say!("{b:<14} {x:>9} {y:>9}");
            }
            say!("{:<14} {:>9} {:>9}", "stage", "before", "after");
            for (s, (x, y)) in &change.stages {
                say!("{s:<14} {x:>9} {y:>9}");
            }
            if change.movers.is_empty() {
                say!(
                    "{} contact(s) change band or stage; no score changes",
                    change.moved
                );
            } else {
                say!(
                    "{} contact(s) change band or stage; biggest score moves:",
                    change.moved
                );
            }
            for (id, before, after) in &change.movers {
                say!("  {id:<16} {before:>6.1} -> {after:>6.1}");
            }
            Ok(())
        }
        ModelCommand::Log => {
            for v in store.model_log()? {
                let current = if v.version == store.model_version() {
                    " (current)"
                } else {
                    ""
                };
                say!(
                    "{:>3}  {}  '{}' version {}{current}",
                    v.version,
                    v.created_at,
                    v.name,
                    v.author_version
                );
            }
            Ok(())
        }
        ModelCommand::Show { version } => {
            let v = version.unwrap_or(store.model_version());
            let text = store
                .model_text(v)?
                .ok_or_else(|| Failure::input(format!("no model version {v}")))?;
            emit(|w| w.write_all(text.as_bytes()))
        }
    }
}

pub fn tick(db: &Path, until: Option<&str>) -> Result<(), Failure> {
    let mut store = open(db)?;
    let until = match until {
        Some(_) => crate::as_of(until)?,
        None => now()?,
    };
    let s = store.tick(until)?;
    say!(
        "applied time up to {until}: {} contact(s) looked at, {} transition(s) recorded",
        s.contacts,
        s.transitions
    );
    Ok(())
}

pub fn delete(db: &Path, id: &str) -> Result<(), Failure> {
    let mut store = open(db)?;
    store.delete_contact(id)?;
    say!("deleted {id}: attributes, events, scores and history");
    Ok(())
}

pub fn check(db: &Path) -> Result<(), Failure> {
    let store = open(db)?;
    let bad = store.check()?;
    let (contacts, events) = store.counts()?;
    if bad.is_empty() {
        say!(
            "{}: ok ({contacts} contacts, {events} events)",
            db.display()
        );
        Ok(())
    } else {
        Err(Failure::other(format!(
            "{}: {} contact(s) whose stored score does not match their events: {}",
            db.display(),
            bad.len(),
            bad.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        )))
    }
}
