//! Writes a synthetic lead table for the learning benchmarks:
//! `cargo run --release -p leadscore-learn --example lead_table -- ROWS FEATURES OUT.csv`
//!
//! Columns: `id`, then FEATURES columns (a quarter of them text with 2 to 12
//! values, the rest numbers, 3% missing), then `converted`, drawn from a
//! known formula: a linear part on the first numbers, an interaction, and a
//! step on one text column.

use std::io::{BufWriter, Write};

use leadscore_learn::sample::Rng;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: lead_table ROWS FEATURES OUT.csv";
    let (Some(rows), Some(features), Some(out)) = (
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
        args.get(2).and_then(|a| a.parse::<usize>().ok()),
        args.get(3),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let features = features.max(4);
    let text_columns = features / 4;
    let mut w = BufWriter::new(std::fs::File::create(out)?);
    write!(w, "id")?;
    for f in 0..features {
        if f < text_columns {
            write!(w, ",t{f}")?;
        } else {
            write!(w, ",n{f}")?;
        }
    }
    writeln!(w, ",converted")?;
    let mut rng = Rng::new(7);
    let mut line = String::new();
    for r in 0..rows {
        line.clear();
        line.push_str(&r.to_string());
        let mut z = -2.0;
        for f in 0..features {
            line.push(',');
            let missing = rng.unit() < 0.03;
            if f < text_columns {
                let levels = 2 + f % 11;
                let v = rng.below(levels);
                if f == 0 && v == 1 {
                    z += 1.2;
                }
                if !missing {
                    line.push_str(&format!("level{v}"));
                }
            } else {
                let v = rng.normal();
                let k = f - text_columns;
                if k < 5 {
                    z += [0.8, -0.6, 0.4, 0.3, -0.2][k] * v;
                }
                if k == 5 {
                    z += if v > 0.5 { 0.7 } else { 0.0 };
                }
                if !missing {
                    line.push_str(&format!("{v:.4}"));
                }
            }
        }
        let y = rng.unit() < 1.0 / (1.0 + (-z).exp());
        line.push_str(if y { ",1" } else { ",0" });
        writeln!(w, "{line}")?;
    }
    w.flush()
}
