//! `leadscore sql` run in the real engines: DuckDB and Spark (Python
//! packages `duckdb` and `pyspark`, the latter on a Java runtime) and
//! PostgreSQL (a server named by `LEADSCORE_POSTGRES`). Each engine scores
//! the conformance cases and random models that use every feature (every
//! operator, regexes, windows, decay, both kinds of limit,
//! disqualification and requalification, weights, bands, stages) over
//! random data with ties, duplicates, time zone offsets, events after
//! as-of and for unknown contacts; every number must equal
//! `leadscore score --format csv` on the same files to 1e-9 (relative
//! above 1), every band, stage and flag exactly. Model values include
//! `'); DROP TABLE events; --` and the runner checks both tables survive.
//!
//! `./test.sh` installs the engines, starts PostgreSQL on a temporary data
//! directory and sets `LEADSCORE_PYTHON` and `LEADSCORE_POSTGRES`; without
//! them these tests fail, naming what is missing.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const AS_OF: &str = "2026-06-01T00:00:00Z";

/// A small deterministic generator (SplitMix64): the same seed, the same
/// cases, so a failure can be rerun and its files read.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const TEXTS: &[&str] = &[
    "VP",
    "director",
    "/pricing",
    "@gmail.com",
    "Ünd",
    "'); DROP TABLE events; --",
    "a\\b",
    "${x}",
    "50%",
    "head",
    "student",
    "acme",
    "de",
    "us",
    "é",
];
const REGEXES: &[&str] = &[
    "(?i)\\b(vp|director|head)\\b",
    "^/pricing",
    "pricing$",
    "[0-9]{3,}",
    "(?i)stud(ent)?",
    "é|ü",
    "\\d+\\s*emp",
    "^\\s*$",
    "a.c",
    "(?i)ÜND",
    "\\bacme",
];
const ATTRIBUTES: &[&str] = &["title", "email", "size", "country", "note"];
const PROPERTIES: &[&str] = &["url", "campaign"];
const TYPES: &[&str] = &["page_view", "email_click", "form_submit", "webinar"];

/// One leaf on `subject` (`attribute = "title"`) with a random operator.
fn leaf(rng: &mut Rng, subject: &str) -> String {
    let op = match rng.below(13) {
        0 => format!("equals = {}", toml_str(rng.pick(TEXTS))),
        1 => format!("not_equals = {}", toml_str(rng.pick(TEXTS))),
        2 => format!(
            "in = [{}, {}]",
            toml_str(rng.pick(TEXTS)),
            toml_str(rng.pick(TEXTS))
        ),
        3 => format!("contains = {}", toml_str(rng.pick(TEXTS))),
        4 => format!("starts_with = {}", toml_str(rng.pick(TEXTS))),
        5 => format!("ends_with = {}", toml_str(rng.pick(TEXTS))),
        6 | 7 => format!("matches = {}", toml_str(rng.pick(REGEXES))),
        8 => format!("gt = {}", rng.pick(&["10", "99.5", "-3", "1e3"])),
        9 => format!("gte = {}", rng.pick(&["50", "0", "200"])),
        10 => format!("lt = {}", rng.pick(&["100", "7.25"])),
        11 => format!("lte = {}", rng.pick(&["500", "-1"])),
        _ => format!("exists = {}", rng.chance(50)),
    };
    format!("{{ {subject}, {op} }}")
}

fn condition(rng: &mut Rng, subjects: &[String], depth: u32) -> String {
    let subject = &subjects[rng.below(subjects.len())];
    if depth == 0 || rng.chance(55) {
        return leaf(rng, subject);
    }
    match rng.below(3) {
        0 => format!(
            "{{ all = [{}, {}] }}",
            condition(rng, subjects, depth - 1),
            condition(rng, subjects, depth - 1)
        ),
        1 => format!(
            "{{ any = [{}, {}] }}",
            condition(rng, subjects, depth - 1),
            condition(rng, subjects, depth - 1)
        ),
        _ => format!("{{ not = {} }}", condition(rng, subjects, depth - 1)),
    }
}

fn model(rng: &mut Rng) -> String {
    let mut m = String::from("name = \"random\"\nversion = 1\n");
    let dims = 1 + rng.below(3);
    for k in 0..dims {
        let (min, max) = *rng.pick(&[&(0, 100), &(-20, 50), &(-50, 30)]);
        let _ = writeln!(m, "[[dimension]]\nid = \"d{k}\"\nmin = {min}\nmax = {max}");
        if rng.chance(60) {
            let _ = writeln!(m, "half_life_days = {}", rng.pick(&["7", "30", "0.5"]));
        }
        if rng.chance(40) {
            let _ = writeln!(m, "window_days = {}", rng.pick(&["10", "90", "400"]));
        }
    }
    if rng.chance(60) {
        let weights: Vec<String> = (0..dims)
            .map(|k| format!("d{k} = {}", rng.pick(&["1", "0.5", "3", "2.25"])))
            .collect();
        let _ = writeln!(m, "[score]\nweights = {{ {} }}", weights.join(", "));
    }
    let hot = 50 + rng.below(40);
    let warm = 10 + rng.below(40);
    let _ = writeln!(
        m,
        "[[band]]\nid = \"hot\"\nmin_score = {hot}\n[[band]]\nid = \"warm\"\nmin_score = {warm}.5"
    );
    if rng.chance(70) {
        let _ = writeln!(m, "[[band]]\nid = \"cold\"\nmin_score = 0");
    }
    let mut stage_subjects: Vec<String> =
        (0..dims).map(|k| format!("dimension = \"d{k}\"")).collect();
    stage_subjects.push("score = true".into());
    let stage_leaf = |rng: &mut Rng, s: &str| {
        format!(
            "{{ {s}, {} = {} }}",
            rng.pick(&["gte", "gt", "lt", "lte"]),
            rng.below(60)
        )
    };
    let (i, j) = (
        rng.below(stage_subjects.len()),
        rng.below(stage_subjects.len()),
    );
    let a = stage_leaf(rng, &stage_subjects[i]);
    let b = stage_leaf(rng, &stage_subjects[j]);
    let name = format!("attribute = {}", toml_str(rng.pick(ATTRIBUTES)));
    let attr = leaf(rng, &name);
    let _ = writeln!(
        m,
        "[[stage]]\nid = \"sql\"\nwhen = {{ all = [{a}, {b}] }}\n[[stage]]\nid = \"mql\"\nwhen = {{ any = [{a}, {{ not = {attr} }}] }}"
    );
    let attr_subjects: Vec<String> = ATTRIBUTES
        .iter()
        .map(|a| format!("attribute = {}", toml_str(a)))
        .collect();
    let mut event_subjects: Vec<String> = PROPERTIES
        .iter()
        .map(|p| format!("property = {}", toml_str(p)))
        .collect();
    event_subjects.push(attr_subjects[0].clone());
    let mut n = 0;
    for _ in 0..1 + rng.below(4) {
        n += 1;
        let points = rng.pick(&["10", "-5", "25.5", "40", "3"]);
        let _ = writeln!(
            m,
            "[[rule]]\nid = \"r{n}\"\ndimension = \"d{}\"\npoints = {points}",
            rng.below(dims)
        );
        if rng.chance(85) {
            let _ = writeln!(m, "when = {}", condition(rng, &attr_subjects, 2));
        }
    }
    for _ in 0..1 + rng.below(5) {
        n += 1;
        let points = rng.pick(&["10", "-5", "25.5", "40", "3", "0.125"]);
        let _ = writeln!(
            m,
            "[[rule]]\nid = \"r{n}\"\ndimension = \"d{}\"\non = \"{}\"\npoints = {points}",
            rng.below(dims),
            rng.pick(TYPES)
        );
        if rng.chance(50) {
            let _ = writeln!(m, "when = {}", condition(rng, &event_subjects, 2));
        }
        match rng.below(3) {
            0 => {}
            1 => {
                let _ = writeln!(m, "limit = {{ count = {} }}", 1 + rng.below(3));
            }
            _ => {
                let _ = writeln!(
                    m,
                    "limit = {{ count = {}, per_days = {} }}",
                    1 + rng.below(3),
                    rng.pick(&["1", "7", "30", "0.25"])
                );
            }
        }
    }
    if rng.chance(40) {
        n += 1;
        let _ = writeln!(
            m,
            "[[rule]]\nid = \"r{n}\"\ndisqualify = true\nwhen = {{ attribute = \"title\", matches = \"(?i)student\" }}"
        );
    }
    if rng.chance(60) {
        n += 1;
        let _ = writeln!(
            m,
            "[[rule]]\nid = \"r{n}\"\non = \"unsubscribe\"\ndisqualify = true\ndimension = \"d0\""
        );
        if rng.chance(60) {
            let _ = writeln!(m, "requalify_on = \"resubscribe\"");
        }
    }
    m
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A time around `base` (microseconds; up to 340 days before, 60 after),
/// written with a random offset: on a 6-hour grid, in whole seconds or
/// with microseconds.
fn timestamp(rng: &mut Rng, base: i64) -> (i64, String) {
    let micros = match rng.below(4) {
        // On a 6-hour grid: exactly on the edges of windows and limits.
        0 | 3 => base - (rng.below(60) as i64 - 4) * 6 * 3_600_000_000,
        1 => base + (rng.below(400 * 86_400) as i64 - 340 * 86_400) * 1_000_000,
        _ => {
            base + (rng.below(400 * 86_400) as i64 - 340 * 86_400) * 1_000_000
                + rng.below(1_000_000) as i64
        }
    };
    let offset_minutes = *rng.pick(&[&0i64, &120, &-330]);
    (micros, rfc3339(micros, offset_minutes))
}

fn rfc3339(micros: i64, offset_minutes: i64) -> String {
    let local = micros.div_euclid(1_000_000) + offset_minutes * 60;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let frac = micros.rem_euclid(1_000_000);
    let zone = match offset_minutes {
        0 => "Z".to_string(),
        m => format!(
            "{}{:02}:{:02}",
            if m < 0 { '-' } else { '+' },
            m.abs() / 60,
            m.abs() % 60
        ),
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}{zone}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

const VALUES: &[&str] = &[
    "VP Sales",
    " director ",
    "Head of Growth",
    "STUDENT",
    "student intern",
    "ana@gmail.com",
    "bob@ACME.com",
    "250",
    " 1e3 ",
    "12 emp",
    "n/a",
    "-3.5",
    "Ünd Co",
    "und",
    "abc",
    "a\\b",
    "'); DROP TABLE events; --",
    "${x}",
    "50%",
    "de",
    "US",
    "é",
    "/pricing",
    "/Pricing/enterprise",
    "/blog/pricing",
    "   ",
    "0x10",
    "1.",
    ".5",
    "+7",
    "\u{3000}US\u{a0}",
    "\u{2003}/pricing\t",
];

/// Writes contacts.csv and events.csv for one random case.
fn data(rng: &mut Rng, dir: &Path) {
    let as_of_micros = 1_780_272_000_000_000i64; // 2026-06-01T00:00:00Z
    let mut contacts = format!("id,{}\n", ATTRIBUTES.join(","));
    let n_contacts = 5 + rng.below(25);
    for c in 0..n_contacts {
        let mut row = vec![csv_field(&format!("c{c}"))];
        for _ in ATTRIBUTES {
            row.push(if rng.chance(25) {
                String::new()
            } else {
                csv_field(rng.pick(VALUES))
            });
        }
        contacts.push_str(&row.join(","));
        contacts.push('\n');
    }
    let mut events = format!("id,contact_id,type,timestamp,{}\n", PROPERTIES.join(","));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut last_time: Option<String> = None;
    for e in 0..rng.below(20 * n_contacts) {
        if rng.chance(8)
            && let Some(copy) = rows.get(rng.below(rows.len().max(1)))
        {
            rows.push(copy.clone());
            continue;
        }
        // The same event id under another contact counts for each.
        if rng.chance(4)
            && let Some(copy) = rows.get(rng.below(rows.len().max(1)))
        {
            let mut copy = copy.clone();
            copy[1] = csv_field(&format!("c{}", rng.below(n_contacts)));
            rows.push(copy);
            continue;
        }
        let contact = if rng.chance(4) {
            "ghost".to_string()
        } else {
            format!("c{}", rng.below(n_contacts))
        };
        let kind = if rng.chance(12) {
            rng.pick(&["unsubscribe", "resubscribe", "other"])
        } else {
            rng.pick(TYPES)
        };
        let time = match &last_time {
            Some(t) if rng.chance(15) => t.clone(),
            _ => timestamp(rng, as_of_micros).1,
        };
        last_time = Some(time.clone());
        let mut row = vec![
            csv_field(&format!("e{e}")),
            csv_field(&contact),
            csv_field(kind),
            csv_field(&time),
        ];
        for _ in PROPERTIES {
            row.push(if rng.chance(20) {
                String::new()
            } else {
                csv_field(rng.pick(VALUES))
            });
        }
        rows.push(row);
    }
    for r in rows {
        events.push_str(&r.join(","));
        events.push('\n');
    }
    std::fs::write(dir.join("contacts.csv"), contacts).unwrap();
    std::fs::write(dir.join("events.csv"), events).unwrap();
}

/// A folder of cases for `engine`: the conformance cases and the spec's
/// example, then `random` random ones (seeded by `seed`).
fn cases(engine: &str, random: usize, seed: u64) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sql-{engine}"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let fixtures = common::fixtures();
    let mut fixed = vec![("spec-example".to_string(), fixtures.join("spec-example"))];
    for n in ["101", "202", "303"] {
        fixed.push((
            format!("case-{n}"),
            fixtures.join(format!("conformance/case-{n}")),
        ));
    }
    for (name, from) in fixed {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["model.toml", "contacts.csv", "events.csv"] {
            std::fs::copy(from.join(f), dir.join(f)).unwrap();
        }
        let as_of = std::fs::read_to_string(from.join("as_of.txt"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "2026-05-01T00:00:00Z".into());
        std::fs::write(dir.join("as_of.txt"), as_of).unwrap();
    }
    let mut rng = Rng(seed);
    for k in 0..random {
        let dir = root.join(format!("random-{k:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.toml"), model(&mut rng)).unwrap();
        data(&mut rng, &dir);
        std::fs::write(dir.join("as_of.txt"), AS_OF).unwrap();
    }
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let as_of = std::fs::read_to_string(dir.join("as_of.txt")).unwrap();
        let model = dir.join("model.toml");
        let out = common::leadscore([
            "sql".as_ref(),
            "--model".as_ref(),
            model.as_os_str(),
            "--dialect".as_ref(),
            engine.as_ref(),
            "--as-of".as_ref(),
            as_of.as_ref() as &std::ffi::OsStr,
        ]);
        assert!(
            out.status.success(),
            "{}: leadscore sql: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join("query.sql"), &out.stdout).unwrap();
        let contacts = dir.join("contacts.csv");
        let events = dir.join("events.csv");
        let out = common::leadscore([
            "score".as_ref(),
            "--model".as_ref(),
            model.as_os_str(),
            "--contacts".as_ref(),
            contacts.as_os_str(),
            "--events".as_ref(),
            events.as_os_str(),
            "--as-of".as_ref(),
            as_of.as_ref() as &std::ffi::OsStr,
            "--format".as_ref(),
            "csv".as_ref(),
            "--quiet".as_ref(),
        ]);
        assert!(
            out.status.success(),
            "{}: leadscore score: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join("expected.csv"), &out.stdout).unwrap();
    }
    root
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// Runs the engine over every case and compares each result with
/// `leadscore score`'s.
fn run_and_compare(engine: &str, module: &str, root: &Path) {
    let runner = common::fixtures().join("../crates/cli/tests/fixtures/sql/run.py");
    let out = Command::new(common::python_with(
        module,
        &format!("the Python package {module}"),
    ))
    .arg(runner)
    .args([engine.as_ref(), root.as_os_str()])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{engine} runner failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut compared = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let dir = entry.unwrap().path();
        let expected = read_csv(&dir.join("expected.csv"));
        let got = read_csv(&dir.join("result.csv"));
        let (head, mut want) = (expected[0].clone(), expected[1..].to_vec());
        want.sort();
        assert_eq!(got[0], head, "{}: columns", dir.display());
        assert_eq!(
            got.len(),
            expected.len(),
            "{}: number of contacts",
            dir.display()
        );
        for (g, w) in got[1..].iter().zip(&want) {
            for ((gv, wv), column) in g.iter().zip(w).zip(&head) {
                let same = match (gv.parse::<f64>(), wv.parse::<f64>()) {
                    (Ok(a), Ok(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    _ => gv == wv,
                };
                assert!(
                    same,
                    "{}: contact {}, column {column}: {engine} says {gv:?}, leadscore score {wv:?}",
                    dir.display(),
                    w[0]
                );
            }
        }
        compared += 1;
    }
    assert!(compared > 4, "too few cases ran");
}

#[test]
fn duckdb_gives_the_contracts_scores() {
    let root = cases("duckdb", 150, 0xD0C);
    run_and_compare("duckdb", "duckdb", &root);
}

#[test]
fn postgres_gives_the_contracts_scores() {
    assert!(
        std::env::var("LEADSCORE_POSTGRES").is_ok(),
        "LEADSCORE_POSTGRES is not set: ./test.sh starts PostgreSQL (tests/fixtures/sql/postgres.sh) and sets it"
    );
    let root = cases("postgres", 80, 0x9057);
    run_and_compare("postgres", "csv", &root);
}

#[test]
fn spark_gives_the_contracts_scores() {
    let root = cases("spark", 8, 0x5BA7);
    run_and_compare("spark", "pyspark", &root);
}

#[test]
fn what_an_engine_cannot_do_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.toml");
    std::fs::write(
        &model,
        "[[dimension]]\nid = \"fit\"\n[[band]]\nid = \"hot\"\nmin_score = 0\n[[rule]]\nid = \"mid\"\ndimension = \"fit\"\npoints = 1\nwhen = { attribute = \"title\", matches = \"a\\\\bb\" }\n",
    )
    .unwrap();
    let out = common::leadscore([
        "sql".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        "--dialect".as_ref(),
        "duckdb".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rule \"mid\"") && err.contains("RE2"), "{err}");
    // PostgreSQL has look-arounds: the same pattern compiles.
    let out = common::leadscore([
        "sql".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        "--dialect".as_ref(),
        "postgres".as_ref(),
    ]);
    assert!(out.status.success());
    let out = common::leadscore([
        "sql".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        "--dialect".as_ref(),
        "oracle".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dialect"));
}
