//! `leadscore train` and `leadscore predict`: the learning commands, from
//! files.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use leadscore_learn::metrics::Metrics;
use leadscore_learn::outcomes::{self, Outcomes};
use leadscore_learn::points::{Calibrated, calibrate};
use leadscore_learn::table::DEFAULT_MISSING;
use leadscore_learn::train::{Report, evaluate};
use leadscore_learn::{LearnError, LearnerChoice, Predictor, Table, TrainOptions, train};

use crate::{Failure, emit};

/// Options of `leadscore train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Training data: a CSV file, one row per lead, with an outcome column
    /// (tabular mode; without it, the lead database is read: see
    /// --outcome-event).
    #[arg(long, required_unless_present = "outcome_event", requires = "label")]
    data: Option<PathBuf>,
    /// The outcome column (1/0, yes/no, true/false; or see --positive).
    #[arg(long)]
    label: Option<String>,
    /// Database mode: the event type that means "converted" (e.g.
    /// deal_won). Contacts converting within --horizon-days before --as-of
    /// are described as of the moment before it; the others as of a moment
    /// drawn inside the horizon; nothing later is read.
    #[arg(long, conflicts_with_all = ["data", "test"])]
    outcome_event: Option<String>,
    /// Database mode: the horizon, in days.
    #[arg(long, default_value_t = 90.0)]
    horizon_days: f64,
    /// Database mode: the end of the observed time (default: now, or
    /// LEADSCORE_NOW).
    #[arg(long)]
    as_of: Option<String>,
    /// The outcome value that means "converted" (default: 1/yes/true/y).
    #[arg(long)]
    positive: Option<String>,
    /// Columns to leave out (comma-separated), such as ids or columns that
    /// are filled in after the outcome.
    #[arg(long, value_delimiter = ',')]
    drop: Vec<String>,
    /// Cell values that mean "no value", on top of empty, NA, N/A, null
    /// (comma-separated; e.g. a form's default "Select").
    #[arg(long, value_delimiter = ',')]
    missing: Vec<String>,
    /// A held-out CSV file (same columns) to measure the final model on.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed of the folds and the trees.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Learner: auto picks the better cross-validated ROC AUC.
    #[arg(long, value_enum, default_value_t = LearnerArg::Auto)]
    learner: LearnerArg,
    /// Weigh converters and non-converters equally while fitting.
    #[arg(long)]
    balance: bool,
    /// Trees: leaves per tree.
    #[arg(long, default_value_t = 31)]
    leaves: usize,
    /// Trees: fewest leads in a leaf.
    #[arg(long, default_value_t = 20)]
    min_leaf: usize,
    /// Trees: shrinkage of each tree (the round count is chosen by
    /// cross-validation).
    #[arg(long, default_value_t = 0.05)]
    learning_rate: f64,
    /// Trees: bins per feature (2 to 255).
    #[arg(long, default_value_t = 63)]
    max_bins: usize,
    /// Trees: most boosting rounds.
    #[arg(long, default_value_t = 2000)]
    max_rounds: usize,
    /// Where to write the model file.
    #[arg(long, default_value = "predictive-model.json")]
    out: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
}

/// Options of `leadscore predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// The model file written by `leadscore train`.
    #[arg(long)]
    predictor: PathBuf,
    /// Leads to score: a CSV file with the columns the model was trained on.
    #[arg(long)]
    data: PathBuf,
    /// Column that identifies a lead in the output (default: the line
    /// number).
    #[arg(long)]
    id: Option<String>,
    /// Also give each lead's N strongest factors.
    #[arg(long, default_value_t = 0)]
    explain: usize,
    /// Cell values that mean "no value" (as for train).
    #[arg(long, value_delimiter = ',')]
    missing: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PredictFormat::Csv)]
    format: PredictFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LearnerArg {
    Auto,
    Linear,
    Trees,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum PredictFormat {
    Csv,
    Json,
}

impl From<LearnError> for Failure {
    fn from(e: LearnError) -> Failure {
        match e {
            LearnError::Io { .. } => Failure::other(e),
            _ => Failure::input(e),
        }
    }
}

fn missing_values(extra: &[String]) -> Vec<String> {
    DEFAULT_MISSING
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().map(|s| s.trim().to_owned()))
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The training table of database mode: point-in-time features of every
/// contact (see `leadscore_learn::history`), and the data's name.
fn database_table(
    db: &Path,
    outcome: &str,
    horizon_days: f64,
    as_of: Option<&str>,
) -> Result<(Table, Vec<u8>, String), Failure> {
    if horizon_days.is_nan() || horizon_days <= 0.0 {
        return Err(Failure::input("--horizon-days: must be greater than 0"));
    }
    let at = match as_of {
        Some(t) => crate::as_of(Some(t))?,
        None => crate::db::now()?,
    };
    let store = leadscore_store::Store::open(db)?;
    let types = store.event_types()?;
    if !types.iter().any(|t| t == outcome) {
        return Err(Failure::input(format!(
            "--outcome-event: no {outcome:?} event in {}; its event types are: {}",
            db.display(),
            types.join(", ")
        )));
    }
    let t = store.training_table(outcome, horizon_days, at, &db.display().to_string())?;
    let name = format!(
        "{} (outcome {outcome}, horizon {horizon_days} days before {at}{})",
        db.display(),
        if t.left_out > 0 {
            format!("; {} converted earlier, left out", t.left_out)
        } else {
            String::new()
        }
    );
    Ok((t.table, t.labels, name))
}

/// Runs `leadscore train`.
pub fn run_train(args: TrainArgs, db: &Path) -> Result<(), Failure> {
    let missing = missing_values(&args.missing);
    let (mut table, labels, data_name, label_name) = match (
        &args.outcome_event,
        &args.data,
        &args.label,
    ) {
        (Some(event), _, _) => {
            let (table, labels, name) =
                database_table(db, event, args.horizon_days, args.as_of.as_deref())?;
            (table, labels, name, event.clone())
        }
        (None, Some(data), Some(label)) => {
            let mut table = Table::read_csv(data, &missing)?;
            let labels = table.take_label(label, args.positive.as_deref())?;
            (table, labels, file_name(data), label.clone())
        }
        _ => {
            return Err(Failure::input(
                "train: give --data FILE.csv --label COLUMN, or --outcome-event TYPE to learn from the database",
            ));
        }
    };
    for column in &args.drop {
        table
            .take(column.trim())
            .map_err(|e| Failure::input(format!("--drop: {e}")))?;
    }
    let options = TrainOptions {
        folds: args.folds,
        seed: args.seed,
        learner: match args.learner {
            LearnerArg::Auto => LearnerChoice::Auto,
            LearnerArg::Linear => LearnerChoice::Linear,
            LearnerArg::Trees => LearnerChoice::Trees,
        },
        balance: args.balance,
        trees: leadscore_learn::trees::TreeParams {
            seed: args.seed,
            max_leaves: args.leaves,
            min_leaf: args.min_leaf,
            learning_rate: args.learning_rate,
            max_bins: args.max_bins,
            ..Default::default()
        },
        max_rounds: args.max_rounds,
        ..TrainOptions::default()
    };
    let mut training = train(&table, &labels, &data_name, &label_name, &options)?;
    if let Some(event) = &args.outcome_event {
        training.predictor.history = Some(leadscore_learn::predictor::HistorySource {
            outcome_event: event.clone(),
            horizon_days: args.horizon_days,
        });
    }
    if let Some(test) = &args.test {
        let mut test_table = Table::read_csv(test, &missing)?;
        let test_labels = test_table.take_label(&label_name, args.positive.as_deref())?;
        training.report.test = Some(evaluate(&training.predictor, &test_table, &test_labels)?);
    }
    training.predictor.save(&args.out)?;
    let report = &training.report;
    emit(|w| match args.format {
        ReportFormat::Json => {
            let mut doc = serde_json::to_value(report).map_err(io::Error::other)?;
            doc["model_file"] = serde_json::Value::String(args.out.display().to_string());
            serde_json::to_writer_pretty(&mut *w, &doc).map_err(io::Error::other)?;
            writeln!(w)
        }
        ReportFormat::Table => write_report(w, report, &args.out, args.test.as_deref()),
    })
}

fn write_metrics(w: &mut dyn Write, m: &Metrics) -> io::Result<()> {
    writeln!(
        w,
        "  ROC AUC {:.4}   PR AUC {:.4}   log loss {:.4}   Brier {:.4}   ({} leads, {} conversions)",
        m.roc_auc, m.pr_auc, m.log_loss, m.brier, m.leads, m.conversions
    )?;
    writeln!(w, "  decile  leads  conversions   rate    lift  captured")?;
    for d in &m.deciles {
        writeln!(
            w,
            "  {:>6} {:>6} {:>12} {:>6.1}% {:>6.2} {:>8.1}%",
            d.decile,
            d.leads,
            d.conversions,
            100.0 * d.conversion_rate,
            d.lift,
            100.0 * d.cumulative_capture
        )?;
    }
    writeln!(w, "  calibration: predicted -> observed")?;
    for b in &m.calibration {
        writeln!(
            w,
            "    {:>3.0}-{:<3.0}% {:>7} leads: {:>5.1}% -> {:>5.1}%",
            100.0 * b.from,
            100.0 * b.to,
            b.leads,
            100.0 * b.predicted,
            100.0 * b.observed
        )?;
    }
    Ok(())
}

fn write_report(w: &mut dyn Write, r: &Report, out: &Path, test: Option<&Path>) -> io::Result<()> {
    writeln!(
        w,
        "Trained on {}: {} leads, {} conversions ({:.1}%), {} features",
        r.data,
        r.leads,
        r.conversions,
        100.0 * r.conversions as f64 / r.leads.max(1) as f64,
        r.features.len()
    )?;
    for s in &r.skipped {
        writeln!(w, "  skipped {:?}: {}", s.column, s.reason)?;
    }
    writeln!(
        w,
        "\nCross-validation ({} stratified folds, seed {}):",
        r.cv.folds, r.cv.seed
    )?;
    writeln!(
        w,
        "  learner  setting          ROC AUC (mean ± sd)   log loss"
    )?;
    for (i, c) in r.cv.candidates.iter().enumerate() {
        writeln!(
            w,
            "  {:<8} {:<16} {:.4} ± {:.4}       {:.4}{}",
            c.learner,
            c.setting,
            c.roc_auc_mean,
            c.roc_auc_sd,
            c.log_loss,
            if i == r.cv.chosen { "   <- chosen" } else { "" }
        )?;
    }
    writeln!(
        w,
        "\nHeld-out predictions of the chosen model (calibrated):"
    )?;
    write_metrics(w, &r.cv.metrics)?;
    if let (Some(m), Some(path)) = (&r.test, test) {
        writeln!(w, "\nTest file {}:", path.display())?;
        write_metrics(w, m)?;
    }
    writeln!(
        w,
        "\nStrongest columns (mean |contribution| to the log-odds):"
    )?;
    for i in r.importance.iter().take(15) {
        writeln!(w, "  {:<40} {:.4}", i.column, i.mean_abs_contribution)?;
    }
    writeln!(
        w,
        "\nModel ({}) written to {} in {:.1} s",
        r.learner,
        out.display(),
        r.seconds
    )
}

/// Runs `leadscore predict`.
pub fn run_predict(args: PredictArgs) -> Result<(), Failure> {
    let predictor = Predictor::load(&args.predictor)?;
    let table = Table::read_csv(&args.data, &missing_values(&args.missing))?;
    let ids: Option<&leadscore_learn::table::Column> = match &args.id {
        Some(c) => Some(
            table
                .column(c)
                .map_err(|e| Failure::input(format!("--id: {e}")))?,
        ),
        None => None,
    };
    let x = predictor.spec.encode(&table)?;
    let probabilities: Vec<f64> = predictor
        .log_odds(&x)
        .into_iter()
        .map(|m| predictor.calibration.probability(m))
        .collect();
    emit(|w| {
        if matches!(args.format, PredictFormat::Csv) {
            writeln!(
                w,
                "id,probability,likelihood{}",
                if args.explain > 0 { ",factors" } else { "" }
            )?;
        }
        for (r, p) in probabilities.iter().enumerate() {
            let id = match ids {
                Some(c) => c.get(r).unwrap_or("").to_owned(),
                None => table.lines[r].to_string(),
            };
            let factors = (args.explain > 0).then(|| {
                let mut e = predictor.explain(&table, &x, r);
                e.factors.truncate(args.explain);
                e.factors
            });
            match args.format {
                PredictFormat::Json => {
                    let mut line = serde_json::json!({
                        "id": id,
                        "probability": p,
                        "likelihood": (100.0 * p * 100.0).round() / 100.0,
                    });
                    if let Some(f) = factors {
                        line["factors"] = serde_json::to_value(f).map_err(io::Error::other)?;
                    }
                    writeln!(w, "{line}")?;
                }
                PredictFormat::Csv => {
                    let mut row = format!("{},{p:.6},{:.2}", csv_cell(&id), 100.0 * p);
                    if let Some(f) = factors {
                        let text: Vec<String> = f
                            .iter()
                            .map(|f| format!("{}={} ({:+.3})", f.column, f.value, f.contribution))
                            .collect();
                        row.push(',');
                        row.push_str(&csv_cell(&text.join("; ")));
                    }
                    writeln!(w, "{row}")?;
                }
            }
        }
        Ok(())
    })
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Where outcomes come from, for backtest and calibrate.
#[derive(Args)]
pub struct OutcomeArgs {
    /// Outcome column (1/0, yes/no, true/false) in the outcomes file.
    #[arg(long, conflicts_with = "outcome_event")]
    label: Option<String>,
    /// The outcome value that means "converted" (with --label).
    #[arg(long)]
    positive: Option<String>,
    /// CSV file with an `id` column and the --label column (default: the
    /// first contacts file).
    #[arg(long)]
    outcomes: Option<PathBuf>,
    /// Event type that means "converted" (e.g. deal_won): a lead converts
    /// if it has one after --as-of and within --horizon-days; leads that
    /// converted before --as-of are left out.
    #[arg(long)]
    outcome_event: Option<String>,
    /// Days after --as-of in which an outcome event counts.
    #[arg(long, default_value_t = 90.0)]
    horizon_days: f64,
}

/// Options of `leadscore backtest`.
#[derive(Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    inputs: crate::Inputs,
    #[command(flatten)]
    outcome: OutcomeArgs,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
}

/// Options of `leadscore calibrate`.
#[derive(Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    inputs: crate::Inputs,
    #[command(flatten)]
    outcome: OutcomeArgs,
    /// L2 penalty of the fit (per lead; larger is smoother).
    #[arg(long, default_value_t = 1e-3)]
    l2: f64,
    /// Where to write the model with learned points.
    #[arg(long)]
    out: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
}

/// Collects (contact, time) of the outcome events in an events file.
struct OutcomeSink<'a> {
    event_type: &'a str,
    found: Vec<(String, i64)>,
}

impl leadscore_batch::pipeline::EventSink for OutcomeSink<'_> {
    type Output = Vec<(String, i64)>;
    fn event(
        &mut self,
        event: &leadscore_batch::events::EventRecord<'_>,
    ) -> Result<(), leadscore_batch::error::RecordFault> {
        if event.event_type == self.event_type {
            self.found.push((event.contact_id.to_owned(), event.at.0));
        }
        Ok(())
    }
    fn finish(self) -> Self::Output {
        self.found
    }
}

/// The outcomes of the scored contacts, as the options give them.
fn read_outcomes(
    o: &OutcomeArgs,
    inputs: &crate::Inputs,
    model: &leadscore_core::Model,
    at: leadscore_core::Timestamp,
    contacts: &leadscore_batch::ContactTable,
) -> Result<Outcomes, Failure> {
    let ids: Vec<&str> = (0..contacts.len()).map(|i| contacts.id(i)).collect();
    Ok(match (&o.label, &o.outcome_event) {
        (Some(label), None) => {
            let path = o.outcomes.as_ref().unwrap_or(&inputs.contacts[0]);
            outcomes::from_column(path, label, o.positive.as_deref(), &ids)?
        }
        (None, Some(event_type)) => {
            let mut found = Vec::new();
            leadscore_batch::pipeline::scan(
                &inputs.events,
                &model.vocabulary,
                || OutcomeSink {
                    event_type,
                    found: Vec::new(),
                },
                |chunk| found.extend(chunk),
            )?;
            outcomes::from_events(&ids, found, at.0, o.horizon_days)?
        }
        _ => {
            return Err(Failure::input(
                "give the outcome as --label COLUMN (an outcome column) or --outcome-event TYPE (an event after --as-of)",
            ));
        }
    })
}

/// Runs `leadscore backtest`.
pub fn run_backtest(args: BacktestArgs) -> Result<(), Failure> {
    let (model, at, contacts) = args.inputs.load()?;
    let scores = leadscore_batch::score_files(&model, &contacts, &args.inputs.events, at)?;
    let Outcomes {
        keep,
        labels,
        left_out,
    } = read_outcomes(&args.outcome, &args.inputs, &model, at, &contacts)?;
    let cards: Vec<leadscore_core::ScoreCard> =
        keep.iter().map(|&i| scores.cards[i].clone()).collect();
    let report = leadscore_learn::backtest::backtest(&model, &cards, &labels);
    emit(|w| match args.format {
        ReportFormat::Json => {
            let mut doc = serde_json::to_value(&report).map_err(io::Error::other)?;
            doc["as_of"] = serde_json::Value::String(at.to_string());
            doc["left_out"] = serde_json::Value::from(left_out);
            serde_json::to_writer_pretty(&mut *w, &doc).map_err(io::Error::other)?;
            writeln!(w)
        }
        ReportFormat::Table => write_backtest(w, &report, &model.name, at, left_out),
    })
}

fn write_backtest(
    w: &mut dyn Write,
    b: &leadscore_learn::backtest::Backtest,
    model: &str,
    at: leadscore_core::Timestamp,
    left_out: usize,
) -> io::Result<()> {
    writeln!(
        w,
        "Backtest of model '{model}' as of {at}: {} leads, {} converted ({:.1}%){}",
        b.leads,
        b.conversions,
        100.0 * b.conversions as f64 / b.leads.max(1) as f64,
        if left_out > 0 {
            format!("; {left_out} left out (no outcome, or converted before)")
        } else {
            String::new()
        }
    )?;
    writeln!(w, "  ROC AUC {:.4}   PR AUC {:.4}", b.roc_auc, b.pr_auc)?;
    for (title, groups) in [("band", &b.bands), ("stage", &b.stages)] {
        if groups.is_empty() {
            continue;
        }
        writeln!(
            w,
            "\n  {title:<14} {:>8} {:>10} {:>7} {:>6} {:>10}",
            "leads", "converted", "rate", "lift", "of all"
        )?;
        for g in groups.iter() {
            writeln!(
                w,
                "  {:<14} {:>8} {:>10} {:>6.1}% {:>6.2} {:>9.1}%",
                g.name,
                g.leads,
                g.conversions,
                100.0 * g.conversion_rate,
                g.lift,
                100.0 * g.share_of_conversions
            )?;
        }
    }
    writeln!(w, "\n  threshold: converters caught and missed")?;
    for t in &b.thresholds {
        writeln!(
            w,
            "  {:<48} flags {:>7}, catches {:>6}, misses {:>6} (precision {:.1}%, recall {:.1}%)",
            t.rule,
            t.flagged,
            t.caught,
            t.missed,
            100.0 * t.precision,
            100.0 * t.recall
        )?;
    }
    Ok(())
}

/// Runs `leadscore calibrate`.
pub fn run_calibrate(args: CalibrateArgs) -> Result<(), Failure> {
    let (model, at, contacts) = args.inputs.load()?;
    let values = leadscore_batch::score::rule_values(&model, &contacts, &args.inputs.events, at)?;
    let Outcomes { keep, labels, .. } =
        read_outcomes(&args.outcome, &args.inputs, &model, at, &contacts)?;
    let positives = labels.iter().filter(|&&y| y == 1).count();
    let rows: Vec<Vec<f64>> = keep.iter().map(|&i| values[i].1.clone()).collect();
    let before: Vec<leadscore_core::ScoreCard> =
        keep.iter().map(|&i| values[i].0.clone()).collect();
    let text = std::fs::read_to_string(&args.inputs.model)
        .map_err(|e| Failure::input(format!("{}: {e}", args.inputs.model.display())))?;
    let Calibrated {
        learned,
        text: new_text,
    } = calibrate(&model, &text, &rows, &labels, args.l2).map_err(|e| match e {
        LearnError::Rewrite(m) => Failure::input(format!("{}: {m}", args.inputs.model.display())),
        other => other.into(),
    })?;
    let mut new_model = leadscore_core::Model::from_toml(&new_text)
        .map_err(|e| Failure::other(format!("the rewritten model does not validate: {e}")))?;
    let files = crate::model_files(&args.inputs.model, &new_model)?;
    leadscore_learn::predictor::attach_model_files(&mut new_model, &files)?;
    let after_scores =
        leadscore_batch::score_files(&new_model, &contacts, &args.inputs.events, at)?;
    let after: Vec<f64> = keep
        .iter()
        .map(|&i| {
            let c = &after_scores.cards[i];
            if c.disqualified { 0.0 } else { c.score }
        })
        .collect();
    let before: Vec<f64> = before
        .iter()
        .map(|c| if c.disqualified { 0.0 } else { c.score })
        .collect();
    let auc_before = leadscore_learn::metrics::roc_auc(&before, &labels);
    let auc_after = leadscore_learn::metrics::roc_auc(&after, &labels);
    std::fs::write(&args.out, &new_text)
        .map_err(|e| Failure::other(format!("{}: {e}", args.out.display())))?;
    emit(|w| match args.format {
        ReportFormat::Json => {
            let doc = serde_json::json!({
                "leads": labels.len(),
                "conversions": positives,
                "roc_auc_before": auc_before,
                "roc_auc_after": auc_after,
                "rules": learned.rules,
                "dimension_spans": learned.dimension_spans,
                "model_file": args.out.display().to_string(),
            });
            serde_json::to_writer_pretty(&mut *w, &doc).map_err(io::Error::other)?;
            writeln!(w)
        }
        ReportFormat::Table => {
            writeln!(
                w,
                "Learned points for model '{}' from {} leads ({} converted):",
                model.name,
                labels.len(),
                positives
            )?;
            writeln!(
                w,
                "  {:<28} {:<12} {:>8} {:>8} {:>12} {:>8}",
                "rule", "dimension", "before", "after", "log-odds/hit", "fired"
            )?;
            for r in &learned.rules {
                writeln!(
                    w,
                    "  {:<28} {:<12} {:>8} {:>8} {:>12.3} {:>8}{}",
                    r.rule,
                    r.dimension,
                    r.old_points,
                    r.new_points,
                    r.log_odds_per_match,
                    r.leads_fired,
                    r.kept_because
                        .as_ref()
                        .map(|k| format!("  (kept: {k})"))
                        .unwrap_or_default()
                )?;
            }
            writeln!(
                w,
                "ROC AUC of the score on these leads: {auc_before:.4} before, {auc_after:.4} after (measured on the data the points were fitted to)"
            )?;
            writeln!(w, "New model written to {}", args.out.display())
        }
    })
}
