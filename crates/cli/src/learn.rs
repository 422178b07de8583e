//! `leadscore train` and `leadscore predict`: the learning commands, from
//! files.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use leadscore_learn::metrics::Metrics;
use leadscore_learn::table::DEFAULT_MISSING;
use leadscore_learn::train::{Report, evaluate};
use leadscore_learn::{LearnError, LearnerChoice, Predictor, Table, TrainOptions, train};

use crate::{Failure, emit};

/// Options of `leadscore train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Training data: a CSV file, one row per lead, with an outcome column.
    #[arg(long)]
    data: PathBuf,
    /// The outcome column (1/0, yes/no, true/false; or see --positive).
    #[arg(long)]
    label: String,
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

/// Runs `leadscore train`.
pub fn run_train(args: TrainArgs) -> Result<(), Failure> {
    let missing = missing_values(&args.missing);
    let mut table = Table::read_csv(&args.data, &missing)?;
    let labels = table.take_label(&args.label, args.positive.as_deref())?;
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
    let mut training = train(
        &table,
        &labels,
        &file_name(&args.data),
        &args.label,
        &options,
    )?;
    if let Some(test) = &args.test {
        let mut test_table = Table::read_csv(test, &missing)?;
        let test_labels = test_table.take_label(&args.label, args.positive.as_deref())?;
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
