//! `leadscore`: the command line. Parses arguments, calls the library
//! crates, and turns their errors into messages and exit codes (2 for bad
//! input or an invalid model, 1 for anything else).

/// Prints a line on standard output; a closed pipe (`| head`) is not an
/// error worth a crash, so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod db;
mod demo;
mod learn;
mod serve;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use leadscore_batch::generate::{EventOrder, GenerateFormat, GenerateOptions};
use leadscore_batch::output::{by_score, write_scores};
use leadscore_batch::{ContactTable, OutputFormat, explain_files, score_files};
use leadscore_core::{Model, Timestamp};

/// mimalloc instead of the system allocator: the store and the service
/// allocate many short-lived rows and score cards across threads, where
/// glibc's malloc spent ~17% of an import (perf; docs/performance.md).
/// Built without transparent huge pages (`no_thp`): faulting in 2 MiB pages
/// cost the batch scorer up to 1.9 s of kernel time on a time-ordered file.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lead scoring you can read, test and run anywhere.
#[derive(Parser)]
#[command(name = "leadscore", version, about)]
struct Cli {
    /// The lead database file (for init, import, scores, history, model,
    /// tick, delete, check, and explain ID).
    #[arg(
        long,
        global = true,
        env = "LEADSCORE_DB",
        default_value = "leadscore.db"
    )]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score every contact from contacts and events files.
    Score {
        #[command(flatten)]
        inputs: Inputs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Fmt::Json)]
        format: Fmt,
        /// Order of the output (default: input order).
        #[arg(long, value_enum)]
        sort: Option<SortKey>,
        /// Print only the N highest scores (implies --sort score).
        #[arg(long)]
        top: Option<usize>,
        /// Print no summary on standard error.
        #[arg(long, short)]
        quiet: bool,
        /// Print the time spent in each phase on standard error.
        #[arg(long)]
        timings: bool,
    },
    /// Explain why one contact has its score: `explain ID` reads the
    /// database; `explain --model M --contacts C --events E --contact ID`
    /// reads files.
    Explain {
        /// The contact id (database mode).
        id: Option<String>,
        /// The scoring model (file mode).
        #[arg(long, requires = "contact")]
        model: Option<PathBuf>,
        /// Contacts file (file mode); may be given several times.
        #[arg(long)]
        contacts: Vec<PathBuf>,
        /// Events file (file mode); may be given several times.
        #[arg(long)]
        events: Vec<PathBuf>,
        /// The contact id (file mode).
        #[arg(long)]
        contact: Option<String>,
        /// Explain as of this RFC 3339 time (default: now).
        #[arg(long)]
        as_of: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExplainFmt::Text)]
        format: ExplainFmt,
    },
    /// Create a lead database with a first model version.
    Init {
        /// The scoring model (TOML).
        #[arg(long)]
        model: PathBuf,
    },
    /// Import contacts or events into the database.
    Import {
        #[command(subcommand)]
        kind: db::ImportKind,
    },
    /// List scores from the database.
    Scores {
        /// Scores as of this RFC 3339 time (default: now).
        #[arg(long)]
        as_of: Option<String>,
        /// Only this band (hot, ..., disqualified).
        #[arg(long)]
        band: Option<String>,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Only contacts matching a condition, as in the model file:
        /// '{ attribute = "country", equals = "US" }'.
        #[arg(long = "where")]
        condition: Option<String>,
        /// Order by score, highest first (default: the order contacts
        /// arrived in).
        #[arg(long, value_enum)]
        sort: Option<SortKey>,
        /// Only the N highest scores.
        #[arg(long)]
        top: Option<usize>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = db::ScoresFormat::Table)]
        format: db::ScoresFormat,
    },
    /// Every band and stage transition of a contact, with its cause.
    History {
        /// The contact id.
        id: String,
    },
    /// Model versions: set a new one (re-scores everyone), list, show.
    Model {
        #[command(subcommand)]
        command: db::ModelCommand,
    },
    /// Apply the band and stage changes time brings (decay, windows) up to
    /// a time (default: now).
    Tick {
        /// Apply changes up to this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Erase a contact: attributes, events, scores and history.
    Delete {
        /// The contact id.
        id: String,
    },
    /// Verify the database: SQLite's own check, and every stored score
    /// against its events.
    Check,
    /// Check a model file and list every problem in it.
    Validate {
        /// The model file.
        model: PathBuf,
    },
    /// Print the SQL that scores a contacts table and an events table
    /// inside DuckDB, PostgreSQL or Spark, with this model's exact numbers
    /// (the columns `score --format csv` prints). See docs/scaling.md.
    Sql {
        /// The scoring model (TOML).
        #[arg(long)]
        model: PathBuf,
        /// The engine: duckdb, postgres or spark.
        #[arg(long)]
        dialect: String,
        /// The contacts table (id plus attribute columns).
        #[arg(long, default_value = "contacts")]
        contacts_table: String,
        /// The events table (id, contact_id, type, timestamp, properties).
        #[arg(long, default_value = "events")]
        events_table: String,
        /// Column names, as key=column pairs separated by commas. Keys:
        /// id, contact_id, type, timestamp (events), contact (the contacts
        /// table's id), attributes and properties (a JSON column, or a map
        /// column in Spark, holding them instead of one column each).
        #[arg(long)]
        columns: Option<String>,
        /// Score as of this RFC 3339 time, written into the query.
        #[arg(long, conflicts_with = "as_of_now")]
        as_of: Option<String>,
        /// Score as of the engine's clock when the query runs (the default).
        #[arg(long)]
        as_of_now: bool,
    },
    /// Write deterministic synthetic contacts and events.
    Generate {
        /// Number of contacts.
        #[arg(long)]
        contacts: u64,
        /// Number of events (about; duplicates included).
        #[arg(long)]
        events: u64,
        /// Random seed: the same seed gives the same files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output folder (created if needed).
        #[arg(long)]
        out: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value_t = GenFmt::Csv)]
        format: GenFmt,
        /// Time of the last event window's end (RFC 3339).
        #[arg(long, default_value = leadscore_batch::generate::DEFAULT_END)]
        end: String,
        /// Also generate outcomes: `deal_won` events drawn from a known
        /// formula of fit and recent behaviour, with the true probabilities
        /// in outcomes-truth.csv (to check learning end to end).
        #[arg(long)]
        outcomes: bool,
        /// The events file's order: `time` (across all contacts, as
        /// exports come) or `contact` (blocks of 4 096 contacts, each in
        /// time order: a contact's events close together).
        #[arg(long, value_enum, default_value_t = GenOrder::Time)]
        order: GenOrder,
    },
    /// Learn P(convert) from past leads and their outcomes (a CSV file),
    /// report cross-validated and test measures, and save the model.
    Train(learn::TrainArgs),
    /// Predict P(convert) for every lead of a CSV file with a trained model.
    Predict(learn::PredictArgs),
    /// Measure how well a points model ranks the leads that converted:
    /// AUC, conversion and lift per band and stage, converters caught and
    /// missed by each threshold.
    Backtest(learn::BacktestArgs),
    /// Learn point values for a model's rules from outcomes and write a new
    /// model file with them (AUC before and after).
    Calibrate(learn::CalibrateArgs),
    /// Serve the JSON API on the database (stop with SIGTERM or Ctrl-C:
    /// requests in flight are finished first).
    Serve(serve::ServeArgs),
    /// Create, list and revoke the service's API keys.
    Keys {
        #[command(subcommand)]
        command: serve::KeysCommand,
    },
    /// Subscribe URLs to band and stage changes; list, remove, see the
    /// delivery log.
    Webhooks {
        #[command(subcommand)]
        command: serve::WebhooksCommand,
    },
    /// Generate demo contacts and events, score them with the starter model,
    /// show the hottest leads with their reasons, and load them into an
    /// embedded database (`leadscore.db` beside the files).
    Demo {
        /// Number of demo contacts.
        #[arg(long, default_value_t = 20_000)]
        contacts: u64,
        /// Where to write the demo files (default: a temporary folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The files and time a score is computed from.
#[derive(clap::Args)]
struct Inputs {
    /// The scoring model (TOML).
    #[arg(long)]
    model: PathBuf,
    /// Contacts file (.csv, .ndjson or .jsonl); may be given several times.
    #[arg(long, required = true)]
    contacts: Vec<PathBuf>,
    /// Events file (.csv, .ndjson or .jsonl); may be given several times.
    #[arg(long)]
    events: Vec<PathBuf>,
    /// Score as of this RFC 3339 time (default: now).
    #[arg(long)]
    as_of: Option<String>,
}

impl Inputs {
    /// Loads the model, the as-of time and the contacts.
    fn load(&self) -> Result<(Model, Timestamp, ContactTable), Failure> {
        let model = load_model(&self.model)?;
        let at = as_of(self.as_of.as_deref())?;
        let table = ContactTable::load(&self.contacts, &model.vocabulary)?;
        Ok((model, at, table))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Fmt {
    Json,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExplainFmt {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenFmt {
    Csv,
    Ndjson,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenOrder {
    Time,
    Contact,
}

#[derive(Clone, Copy, ValueEnum)]
enum SortKey {
    /// Highest score first; ties keep input order.
    Score,
}

/// An error for the user, with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn input(message: impl ToString) -> Self {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }
    fn other(message: impl ToString) -> Self {
        Failure {
            code: 1,
            message: message.to_string(),
        }
    }
}

impl From<leadscore_batch::InputError> for Failure {
    fn from(e: leadscore_batch::InputError) -> Self {
        Failure::input(e)
    }
}

fn output_error(e: io::Error) -> Failure {
    Failure::other(format!("writing output: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command, &cli.db) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.message.is_empty() => ExitCode::from(f.code),
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Reads and validates a model file, with the learned models its
/// predictive dimensions name.
pub(crate) fn load_model(path: &Path) -> Result<Model, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let mut model =
        Model::from_toml(&text).map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let files = model_files(path, &model)?;
    leadscore_learn::predictor::attach_model_files(&mut model, &files)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    Ok(model)
}

/// Reads the learned model files a scoring model's predictive dimensions
/// name (paths relative to the scoring model's folder).
pub(crate) fn model_files(
    model_path: &Path,
    model: &Model,
) -> Result<Vec<leadscore_learn::predictor::ModelFile>, Failure> {
    let folder = model_path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for d in &model.dimensions {
        if let Some(p) = &d.predictive {
            let path = folder.join(&p.file);
            let content = std::fs::read_to_string(&path).map_err(|e| {
                Failure::input(format!(
                    "{}: dimension '{}': {}: {e}",
                    model_path.display(),
                    d.id,
                    path.display()
                ))
            })?;
            files.push(leadscore_learn::predictor::ModelFile {
                dimension: d.id.clone(),
                file: p.file.clone(),
                content,
            });
        }
    }
    Ok(files)
}

pub(crate) fn as_of(text: Option<&str>) -> Result<Timestamp, Failure> {
    match text {
        Some(t) => Timestamp::parse(t).map_err(|e| Failure::input(format!("--as-of: {e}"))),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(Failure::other)?;
            Ok(Timestamp(now.as_nanos() as i64))
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends quietly.
pub(crate) fn emit(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
    match f(&mut w).and_then(|()| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(output_error),
    }
}

fn run(command: Command, db_path: &Path) -> Result<(), Failure> {
    match command {
        Command::Score {
            inputs,
            format,
            sort,
            top,
            quiet,
            timings,
        } => {
            let started = Instant::now();
            let (model, at, table) = inputs.load()?;
            let loaded = started.elapsed();
            let scores = score_files(&model, &table, &inputs.events, at)?;
            let scored = started.elapsed();
            let order: Vec<usize> = if sort.is_some() || top.is_some() {
                by_score(&scores.cards, top)
            } else {
                (0..scores.cards.len()).collect()
            };
            let format = match format {
                Fmt::Json => OutputFormat::Json,
                Fmt::Csv => OutputFormat::Csv,
            };
            emit(|w| write_scores(w, &model, format, &|i| table.id(i), &scores.cards, &order))?;
            let s = &scores.stats;
            if s.unknown_contact > 0 {
                eprintln!(
                    "warning: {} event(s) name a contact that is not in the contacts files; they were skipped",
                    s.unknown_contact
                );
            }
            if timings {
                eprintln!(
                    "timings: model and contacts {:.2} s, events {:.2} s, scoring {:.2} s, output {:.2} s",
                    loaded.as_secs_f64(),
                    scores.stats.read_time.as_secs_f64(),
                    scores.stats.score_time.as_secs_f64(),
                    (started.elapsed() - scored).as_secs_f64()
                );
            }
            if !quiet {
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "scored {} contacts from {} events in {:.2} s ({:.0} events/s) as of {}",
                    s.contacts,
                    s.events,
                    secs,
                    s.events as f64 / secs.max(1e-9),
                    at
                );
            }
            Ok(())
        }
        Command::Explain {
            id,
            model,
            contacts,
            events,
            contact,
            as_of: at,
            format,
        } => {
            let json = matches!(format, ExplainFmt::Json);
            let Some(model) = model else {
                let Some(id) = id.or(contact) else {
                    return Err(Failure::input(
                        "explain: give a contact id (database), or --model, --contacts, --events and --contact (files)",
                    ));
                };
                return db::explain(db_path, &id, at.as_deref(), json);
            };
            let inputs = Inputs {
                model,
                contacts,
                events,
                as_of: at,
            };
            let contact = contact.or(id).unwrap_or_default();
            let (model, at, table) = inputs.load()?;
            let Some(index) = table.find(contact.trim()) else {
                return Err(Failure::input(format!(
                    "--contact: no contact with id {contact:?} in the contacts files"
                )));
            };
            let explanation = explain_files(&model, &table, index, &inputs.events, at)?;
            emit(|w| {
                if json {
                    serde_json::to_writer_pretty(&mut *w, &explanation)
                        .map_err(io::Error::other)?;
                    writeln!(w)
                } else {
                    write!(w, "{explanation}")
                }
            })
        }
        Command::Train(args) => learn::run_train(args, db_path),
        Command::Serve(args) => serve::serve(db_path, args),
        Command::Keys { command } => serve::keys(db_path, command),
        Command::Webhooks { command } => serve::webhooks(db_path, command),
        Command::Predict(args) => learn::run_predict(args),
        Command::Backtest(args) => learn::run_backtest(args),
        Command::Calibrate(args) => learn::run_calibrate(args),
        Command::Init { model } => db::init(db_path, &model),
        Command::Import { kind } => db::import(db_path, kind),
        Command::Scores {
            as_of: at,
            band,
            stage,
            condition,
            sort,
            top,
            format,
        } => db::scores(
            db_path,
            at.as_deref(),
            band,
            stage,
            condition,
            sort.is_some(),
            top,
            format,
        ),
        Command::History { id } => db::history(db_path, &id),
        Command::Model { command } => db::model(db_path, command),
        Command::Tick { until } => db::tick(db_path, until.as_deref()),
        Command::Delete { id } => db::delete(db_path, &id),
        Command::Check => db::check(db_path),
        Command::Sql {
            model,
            dialect,
            contacts_table,
            events_table,
            columns,
            as_of,
            as_of_now: _,
        } => {
            let text = std::fs::read_to_string(&model)
                .map_err(|e| Failure::input(format!("{}: {e}", model.display())))?;
            let m = Model::from_toml(&text)
                .map_err(|e| Failure::input(format!("{}: {e}", model.display())))?;
            let dialect = leadscore_sql::Dialect::from_name(&dialect).ok_or_else(|| {
                Failure::input(format!(
                    "--dialect: unknown engine {dialect:?} (duckdb, postgres or spark)"
                ))
            })?;
            let mut cols = leadscore_sql::Columns::default();
            if let Some(c) = &columns {
                cols.assign(c).map_err(Failure::input)?;
            }
            let as_of = match &as_of {
                Some(t) => leadscore_sql::AsOf::At(
                    Timestamp::parse(t).map_err(|e| Failure::input(format!("--as-of: {e}")))?,
                ),
                None => leadscore_sql::AsOf::Now,
            };
            let options = leadscore_sql::Options {
                dialect,
                contacts_table,
                events_table,
                columns: cols,
                as_of,
            };
            let sql = leadscore_sql::compile(&m, &options)
                .map_err(|e| Failure::input(format!("{}: {e}", model.display())))?;
            io::stdout()
                .write_all(sql.as_bytes())
                .map_err(output_error)?;
            Ok(())
        }
        Command::Validate { model } => {
            let m = load_model(&model)?;
            let event_rules = m
                .rules
                .iter()
                .filter(|r| matches!(r.kind, leadscore_core::model::RuleKind::Event { .. }))
                .count();
            say!(
                "{}: ok, model '{}' version {}: {} dimension(s), {} rule(s) ({} on events), {} band(s), {} stage(s)",
                model.display(),
                m.name,
                m.version,
                m.dimensions.len(),
                m.rules.len(),
                event_rules,
                m.bands.len(),
                m.stages.len()
            );
            Ok(())
        }
        Command::Generate {
            contacts,
            events,
            seed,
            out,
            format,
            end,
            outcomes,
            order,
        } => {
            let end = Timestamp::parse(&end).map_err(|e| Failure::input(format!("--end: {e}")))?;
            let options = GenerateOptions {
                contacts,
                events,
                seed,
                end,
                format: match format {
                    GenFmt::Csv => GenerateFormat::Csv,
                    GenFmt::Ndjson => GenerateFormat::Ndjson,
                },
                outcomes,
                order: match order {
                    GenOrder::Time => EventOrder::Time,
                    GenOrder::Contact => EventOrder::Contact,
                },
            };
            let started = Instant::now();
            let written = leadscore_batch::generate::generate(&options, &out)
                .map_err(|e| Failure::other(format!("{}: {e}", out.display())))?;
            eprintln!(
                "wrote {} contacts and {} events to {} and {} in {:.2} s; score them with --as-of {}",
                written.contacts,
                written.events,
                written.contacts_path.display(),
                written.events_path.display(),
                started.elapsed().as_secs_f64(),
                end
            );
            if outcomes {
                eprintln!(
                    "{} contacts converted (deal_won events); true probabilities in {}",
                    written.conversions,
                    out.join("outcomes-truth.csv").display()
                );
            }
            Ok(())
        }
        Command::Demo { contacts, out } => demo::run(contacts, out),
    }
}
