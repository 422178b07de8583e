//! Deterministic synthetic data: contacts and events that look like a real
//! marketing database.
//!
//! Activity is skewed as in real funnels: a heavy-tailed activity weight per
//! contact makes most leads cold and a few very active; events come in
//! sessions (bursts of page views and clicks minutes apart); about 3 % of
//! contacts unsubscribe and a fifth of those come back; about a fifth use a
//! free-mail address; a few are students or work at a competitor; about
//! 0.2 % of event lines are sent twice (exact duplicates, as webhooks do).
//!
//! Every contact draws from its own random stream (seeded from the seed and
//! its index), so the files are the same for the same seed whatever the
//! number of threads. Events are written in time order across all contacts,
//! as exports come ([`EventOrder::Time`]), or with each block of 4 096
//! contacts together ([`EventOrder::Contact`]).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use leadscore_core::Timestamp;
use leadscore_core::timestamp::NANOS_PER_DAY;
use rayon::prelude::*;

/// Default end of the generated time range (the as-of to score with).
pub const DEFAULT_END: &str = "2026-06-30T00:00:00Z";

/// Days of history before the end.
pub const HISTORY_DAYS: i64 = 365;

/// Format of generated files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenerateFormat {
    /// `contacts.csv` and `events.csv`.
    Csv,
    /// `contacts.ndjson` and `events.ndjson`.
    Ndjson,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Number of contacts.
    pub contacts: u64,
    /// Number of events, before unsubscribes, resubscribes and duplicate
    /// lines are added (about 1 % more).
    pub events: u64,
    /// Random seed.
    pub seed: u64,
    /// End of the time range; events fall in the year before it.
    pub end: Timestamp,
    /// File format.
    pub format: GenerateFormat,
    /// Also generate outcomes: `deal_won` events drawn from a hidden, known
    /// formula of fit and recent behaviour (see [`OUTCOME_FORMULA`]), and
    /// `outcomes-truth.csv` with each contact's true probability.
    pub outcomes: bool,
    /// The order of the events file.
    pub order: EventOrder,
}

/// The order of a generated events file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventOrder {
    /// By time across all contacts, as event logs and CRM exports come: a
    /// contact's events are spread over the whole file.
    #[default]
    Time,
    /// Contacts in blocks of 4 096, each block's events in time order: a
    /// contact's events stay within a few megabytes of the file.
    Contact,
}

/// The formula behind generated `deal_won` events, for documentation and
/// tests: each contact gets an outcome time uniform in the 90 days before
/// the end; with `demo` and `pricing` the demo requests and pricing-page
/// views in the 90 days before that time, it converts then with probability
/// 1 / (1 + e^-z).
pub const OUTCOME_FORMULA: &str = "z = -3.0 + 1.0 [senior title: CEO, CTO, VP, Director, Head] + 0.7 [industry software] + 0.6 [company_size >= 200] + 0.8 min(demo, 2) + 0.5 min(pricing, 2)";

/// What the outcome formula reads of a contact's profile.
#[derive(Clone, Copy, Debug, Default)]
struct Profile {
    senior: bool,
    software: bool,
    big: bool,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Written {
    /// Contacts written.
    pub contacts: u64,
    /// Event lines written (duplicates included).
    pub events: u64,
    /// The contacts file.
    pub contacts_path: PathBuf,
    /// The events file.
    pub events_path: PathBuf,
    /// Contacts that converted (with outcomes).
    pub conversions: u64,
}

/// A small, fast, well-mixed generator (SplitMix64), reproducible across
/// platforms and versions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A stream for a (seed, stream) pair.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with probability p.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Picks from (item, weight) pairs.
    pub fn pick<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.below(total as u64) as u32;
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }
}

const TITLES: &[(&str, u32)] = &[
    ("CEO", 2),
    ("CTO", 2),
    ("VP Sales", 3),
    ("VP Marketing", 3),
    ("Director of IT", 4),
    ("Director of Marketing", 4),
    ("Head of Growth", 3),
    ("Marketing Manager", 12),
    ("Sales Manager", 8),
    ("Software Engineer", 14),
    ("Data Analyst", 11),
    ("Consultant", 8),
    ("Account Executive", 6),
    ("Student", 5),
    ("Intern", 4),
    ("Teacher", 3),
];
const INDUSTRIES: &[(&str, u32)] = &[
    ("software", 25),
    ("finance", 14),
    ("healthcare", 11),
    ("retail", 12),
    ("manufacturing", 12),
    ("education", 8),
    ("government", 5),
    ("media", 6),
    ("consulting", 7),
];
const COUNTRIES: &[(&str, u32)] = &[
    ("US", 30),
    ("GB", 9),
    ("DE", 9),
    ("FR", 7),
    ("ES", 4),
    ("NL", 3),
    ("PL", 3),
    ("IN", 12),
    ("BR", 6),
    ("JP", 4),
    ("CA", 6),
    ("AU", 4),
    ("NG", 3),
];
const SOURCES: &[(&str, u32)] = &[
    ("organic", 30),
    ("paid", 22),
    ("event", 10),
    ("referral", 10),
    ("contest", 6),
    ("partner", 7),
    ("", 15),
];
const FREE_MAIL: &[(&str, u32)] = &[
    ("gmail.com", 10),
    ("yahoo.com", 3),
    ("hotmail.com", 3),
    ("outlook.com", 2),
];
const SYLLABLES: &[&str] = &[
    "ac", "me", "glo", "bex", "ini", "tech", "umb", "rel", "la", "nova", "cor", "dyn", "zen",
    "quan", "tum", "ver", "ta", "lux", "pix", "ora",
];
const COMPETITORS: &[&str] = &["scorely", "leadrank", "hubsprocket"];
const FIRST: &[&str] = &[
    "ana", "ben", "chen", "dara", "eli", "fatima", "goran", "hana", "ivan", "jo", "kofi", "lea",
    "mina", "noah", "omar", "priya", "quinn", "rosa", "sven", "tariq", "uma", "vic", "wen",
    "yusuf", "zoe",
];
const PAGES: &[(&str, u32)] = &[
    ("/", 18),
    ("/blog/lead-scoring-101", 10),
    ("/blog/mql-vs-sql", 8),
    ("/blog/email-benchmarks", 6),
    ("/product", 10),
    ("/pricing", 7),
    ("/pricing/enterprise", 2),
    ("/case-studies/acme", 3),
    ("/docs/getting-started", 6),
    ("/careers", 3),
    ("/contact", 2),
    ("/about", 4),
];
const CAMPAIGNS: &[(&str, u32)] = &[
    ("newsletter-2026-05", 8),
    ("newsletter-2026-06", 8),
    ("webinar-invite", 4),
    ("promo-q2", 3),
    ("welcome", 5),
    ("case-study-drip", 3),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    PageView,
    EmailOpen,
    EmailClick,
    FormSubmit,
    ContentDownload,
    Webinar,
    DemoRequest,
    BadgeScan,
    SocialLike,
}

/// One generated event before formatting.
struct Ev {
    at: i64,
    seq: u32,
    kind: Kind,
    url: &'static str,
    duration: u32,
    campaign: &'static str,
    form: &'static str,
    asset: &'static str,
    special: Option<&'static str>,
    offset_minutes: i32,
}

/// Heavy-tailed activity weight of a contact: most near zero, a few large.
fn activity(rng: &mut Rng) -> f64 {
    let u = rng.unit().max(1e-12);
    // Pareto with alpha 1.3, shifted so the typical contact is quiet.
    u.powf(-1.0 / 1.3) - 0.85
}

/// Writes `contacts` and `events` files into `dir`.
pub fn generate(options: &GenerateOptions, dir: &Path) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let ext = match options.format {
        GenerateFormat::Csv => "csv",
        GenerateFormat::Ndjson => "ndjson",
    };
    let contacts_path = dir.join(format!("contacts.{ext}"));
    let events_path = dir.join(format!("events.{ext}"));
    let n = options.contacts;
    let width = n.saturating_sub(1).to_string().len().max(5);

    // Activity weights decide how many events each contact gets.
    let weights: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| activity(&mut Rng::new(options.seed, i * 2 + 1)).max(0.02))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut counts: Vec<u32> = Vec::with_capacity(n as usize);
    let mut assigned = 0u64;
    let mut carry = 0.0f64;
    for w in &weights {
        let exact = options.events as f64 * w / total.max(f64::MIN_POSITIVE) + carry;
        let k = exact.floor().max(0.0);
        carry = exact - k;
        counts.push(k as u32);
        assigned += k as u64;
    }
    // Rounding leftovers go to the most active contacts, deterministically.
    let mut i = 0usize;
    while assigned < options.events && !counts.is_empty() {
        let idx = (i * 7919) % counts.len();
        counts[idx] += 1;
        assigned += 1;
        i += 1;
    }
    drop(weights);

    let mut cw = BufWriter::with_capacity(1 << 20, File::create(&contacts_path)?);
    let mut ew = BufWriter::with_capacity(1 << 20, File::create(&events_path)?);
    if options.format == GenerateFormat::Csv {
        cw.write_all(b"id,email,first_name,job_title,company,company_size,industry,country,lead_source,years_experience,phone\n")?;
        ew.write_all(b"id,contact_id,type,timestamp,url,duration_s,campaign,form,asset\n")?;
    }
    let mut truth = match options.outcomes {
        true => {
            let mut w = BufWriter::new(File::create(dir.join("outcomes-truth.csv"))?);
            w.write_all(b"id,probability,converted\n")?;
            Some(w)
        }
        false => None,
    };
    const SHARD: u64 = 4096;
    let shards: Vec<u64> = (0..n.div_ceil(SHARD)).collect();
    let mut events_written = 0u64;
    let mut conversions = 0u64;
    // In time order, each block's events go to a run file of its own,
    // merged at the end (memory holds a block, not the file).
    let runs_dir = dir.join(".generate-runs");
    let mut runs: Vec<PathBuf> = Vec::new();
    if options.order == EventOrder::Time {
        std::fs::create_dir_all(&runs_dir)?;
    }
    for group in shards.chunks(16) {
        let parts: Vec<Shard> = group
            .par_iter()
            .map(|&s| {
                let lo = s * SHARD;
                let hi = (lo + SHARD).min(n);
                shard(options, width, lo..hi, &counts[lo as usize..hi as usize])
            })
            .collect();
        for part in parts {
            cw.write_all(&part.contacts)?;
            match options.order {
                EventOrder::Contact => ew.write_all(&part.events)?,
                EventOrder::Time => {
                    let run = runs_dir.join(format!("{}.run", runs.len()));
                    std::fs::write(&run, &part.keyed)?;
                    runs.push(run);
                }
            }
            events_written += part.written;
            conversions += part.conversions;
            if let Some(t) = truth.as_mut() {
                t.write_all(&part.truth)?;
            }
        }
    }
    if options.order == EventOrder::Time {
        merge_runs(&runs, &mut ew)?;
        std::fs::remove_dir_all(&runs_dir)?;
    }
    cw.flush()?;
    ew.flush()?;
    if let Some(t) = truth.as_mut() {
        t.flush()?;
    }
    Ok(Written {
        contacts: n,
        events: events_written,
        contacts_path,
        events_path,
        conversions,
    })
}

/// One shard's output.
struct Shard {
    contacts: Vec<u8>,
    /// Its event lines, in time order ([`EventOrder::Contact`]).
    events: Vec<u8>,
    /// The same lines, each after its time (ns) and contact, little-endian
    /// `i64`, `u64`, and its length, `u32` ([`EventOrder::Time`]: a run of
    /// [`merge_runs`]).
    keyed: Vec<u8>,
    written: u64,
    truth: Vec<u8>,
    conversions: u64,
}

fn shard(o: &GenerateOptions, width: usize, range: std::ops::Range<u64>, counts: &[u32]) -> Shard {
    let mut contacts = Vec::with_capacity(counts.len() * 140);
    let mut events: Vec<(Ev, u64)> = Vec::new();
    let mut truth = Vec::new();
    let mut conversions = 0;
    for (i, &k) in range.clone().zip(counts) {
        let mut rng = Rng::new(o.seed, i * 2);
        let id = format!("c{i:0width$}");
        let (line, profile) = contact_line(&mut rng, o.format, &id, i);
        contacts.extend_from_slice(line.as_bytes());
        let start = events.len();
        contact_events(&mut rng, o, k, &mut events, i);
        if o.outcomes {
            // Its own random stream: every other line is the same with or
            // without outcomes.
            let mut orng = Rng::new(o.seed ^ 0x0DEA_1000, i);
            let (p, won) = outcome(&mut orng, o, profile, &events[start..]);
            truth
                .extend_from_slice(format!("{id},{p:.6},{}\n", u8::from(won.is_some())).as_bytes());
            if let Some(e) = won {
                events.push((e, 0));
                conversions += 1;
            }
        }
        for e in &mut events[start..] {
            e.1 = i;
        }
    }
    events.sort_by_key(|(e, c)| (e.at, *c, e.seq));
    let keyed_order = o.order == EventOrder::Time;
    let mut out = Vec::with_capacity(events.len() * 80);
    let mut keyed = Vec::new();
    let mut written = 0;
    let mut dup = Rng::new(o.seed ^ 0xD0D0, range.start);
    let mut put = |at: i64, c: u64, line: &str| {
        if keyed_order {
            keyed.extend_from_slice(&at.to_le_bytes());
            keyed.extend_from_slice(&c.to_le_bytes());
            keyed.extend_from_slice(&(line.len() as u32).to_le_bytes());
            keyed.extend_from_slice(line.as_bytes());
        } else {
            out.extend_from_slice(line.as_bytes());
        }
    };
    for (e, c) in &events {
        let line = event_line(o, width, *c, e);
        put(e.at, *c, &line);
        written += 1;
        // Outcomes draw nothing here, so every other line is the same with
        // or without them.
        if e.special != Some("deal_won") && dup.chance(0.002) {
            put(e.at, *c, &line);
            written += 1;
        }
    }
    Shard {
        contacts,
        keyed,
        events: out,
        written,
        truth,
        conversions,
    }
}

/// One line of a run, as [`Shard::keyed`] holds it.
struct RunLine {
    at: i64,
    contact: u64,
    line: Vec<u8>,
}

/// Reads the next line of a run; `None` at its end.
fn next_run_line(r: &mut impl io::Read) -> io::Result<Option<RunLine>> {
    let mut head = [0u8; 20];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let at = i64::from_le_bytes(head[0..8].try_into().unwrap_or_default());
    let contact = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let len = u32::from_le_bytes(head[16..20].try_into().unwrap_or_default()) as usize;
    let mut line = vec![0u8; len];
    r.read_exact(&mut line)?;
    Ok(Some(RunLine { at, contact, line }))
}

/// Merges the runs (each in time order, each its own contacts) into one
/// file in time order; equal times go by contact, and a run's own lines
/// keep their order.
fn merge_runs(runs: &[PathBuf], out: &mut impl Write) -> io::Result<()> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut readers = runs
        .iter()
        .map(|p| File::open(p).map(|f| io::BufReader::with_capacity(1 << 16, f)))
        .collect::<io::Result<Vec<_>>>()?;
    let mut heads: Vec<Option<RunLine>> = Vec::with_capacity(readers.len());
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        let head = next_run_line(r)?;
        if let Some(h) = &head {
            heap.push(Reverse((h.at, h.contact, i)));
        }
        heads.push(head);
    }
    while let Some(Reverse((_, _, i))) = heap.pop() {
        if let Some(h) = heads[i].take() {
            out.write_all(&h.line)?;
        }
        heads[i] = next_run_line(&mut readers[i])?;
        if let Some(h) = &heads[i] {
            heap.push(Reverse((h.at, h.contact, i)));
        }
    }
    Ok(())
}

/// Draws one contact's outcome from [`OUTCOME_FORMULA`]: its probability,
/// and the `deal_won` event if it converts.
fn outcome(
    rng: &mut Rng,
    o: &GenerateOptions,
    profile: Profile,
    events: &[(Ev, u64)],
) -> (f64, Option<Ev>) {
    const WINDOW: i64 = 90 * NANOS_PER_DAY;
    let at = o.end.0 - (rng.unit() * WINDOW as f64) as i64;
    let recent = events
        .iter()
        .map(|(e, _)| e)
        .filter(|e| e.at < at && e.at >= at - WINDOW && e.special.is_none());
    let (mut demo, mut pricing) = (0u32, 0u32);
    for e in recent {
        demo += u32::from(e.kind == Kind::DemoRequest);
        pricing += u32::from(e.url == "/pricing");
    }
    let z = -3.0
        + 1.0 * f64::from(u8::from(profile.senior))
        + 0.7 * f64::from(u8::from(profile.software))
        + 0.6 * f64::from(u8::from(profile.big))
        + 0.8 * f64::from(demo.min(2))
        + 0.5 * f64::from(pricing.min(2));
    let p = 1.0 / (1.0 + (-z).exp());
    if !rng.chance(p) {
        return (p, None);
    }
    let seq = events.iter().map(|(e, _)| e.seq + 1).max().unwrap_or(0);
    let offset = events.first().map_or(0, |(e, _)| e.offset_minutes);
    (p, Some(special_event(at, seq, "deal_won", offset)))
}

fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn contact_line(rng: &mut Rng, format: GenerateFormat, id: &str, i: u64) -> (String, Profile) {
    let first = FIRST[rng.below(FIRST.len() as u64) as usize];
    let competitor = rng.chance(0.004);
    let company = if competitor {
        COMPETITORS[rng.below(COMPETITORS.len() as u64) as usize].to_string()
    } else {
        let parts = 2 + rng.below(2);
        (0..parts)
            .map(|_| SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize])
            .collect::<String>()
    };
    let domain = if rng.chance(0.2) {
        rng.pick(FREE_MAIL).to_string()
    } else {
        format!("{company}.com")
    };
    let email = format!("{first}{i}@{domain}");
    let title = *rng.pick(TITLES);
    let size = (rng.unit() * 9.0).exp().round() as u64;
    let size_number = size;
    let size = if rng.chance(0.08) {
        String::new()
    } else {
        size.max(1).to_string()
    };
    let industry = *rng.pick(INDUSTRIES);
    let profile = Profile {
        senior: ["CEO", "CTO", "VP", "Director", "Head"]
            .iter()
            .any(|w| title.contains(w)),
        software: industry == "software",
        big: !size.is_empty() && size_number >= 200,
    };
    let country = *rng.pick(COUNTRIES);
    let source = *rng.pick(SOURCES);
    let years = if rng.chance(0.25) {
        String::new()
    } else {
        rng.below(36).to_string()
    };
    let phone = if rng.chance(0.4) {
        String::new()
    } else {
        format!("+1 555 {:04}", rng.below(10_000))
    };
    let company_name = if competitor {
        company.clone()
    } else {
        let mut c = company.clone();
        if let Some(f) = c.get_mut(0..1) {
            f.make_ascii_uppercase();
        }
        format!("{c} Inc")
    };
    let line = match format {
        GenerateFormat::Csv => format!(
            "{id},{email},{first},{},{},{size},{industry},{country},{source},{years},{phone}\n",
            csv_text(title),
            csv_text(&company_name),
        ),
        GenerateFormat::Ndjson => {
            let mut attrs = serde_json::Map::new();
            for (k, v) in [
                ("email", email.as_str()),
                ("first_name", first),
                ("job_title", title),
                ("company", &company_name),
                ("company_size", &size),
                ("industry", industry),
                ("country", country),
                ("lead_source", source),
                ("years_experience", &years),
                ("phone", &phone),
            ] {
                if !v.is_empty() {
                    attrs.insert(k.into(), v.into());
                }
            }
            let obj = serde_json::json!({"id": id, "attributes": attrs});
            format!("{obj}\n")
        }
    };
    (line, profile)
}

fn contact_events(rng: &mut Rng, o: &GenerateOptions, k: u32, out: &mut Vec<(Ev, u64)>, _i: u64) {
    if k == 0 {
        return;
    }
    let end = o.end.0;
    let span = HISTORY_DAYS * NANOS_PER_DAY;
    // Intent: active contacts look at pricing and ask for demos more often.
    let intent = (k as f64 / 40.0).min(1.0);
    let recent_bias = 0.5 + rng.unit() * 2.5;
    let mut remaining = k;
    let mut seq = 0u32;
    let offset_minutes = if rng.chance(0.1) { 120 } else { 0 };
    while remaining > 0 {
        // A session: a burst of 1-8 events minutes apart.
        let size = (1 + rng.below(8) as u32).min(remaining);
        let back = rng.unit().powf(recent_bias) * span as f64;
        let mut at = end - back as i64;
        for _ in 0..size {
            let kind = *rng.pick(&[
                (Kind::PageView, 50),
                (Kind::EmailOpen, 18),
                (Kind::EmailClick, 10),
                (Kind::FormSubmit, 4),
                (Kind::ContentDownload, 3),
                (Kind::Webinar, 2),
                (Kind::DemoRequest, (1.0 + 4.0 * intent) as u32),
                (Kind::BadgeScan, 1),
                (Kind::SocialLike, 4),
            ]);
            let url = match kind {
                Kind::PageView | Kind::EmailClick => {
                    if rng.chance(0.05 * intent) {
                        "/pricing"
                    } else {
                        rng.pick(PAGES)
                    }
                }
                _ => "",
            };
            let campaign = match kind {
                Kind::EmailOpen | Kind::EmailClick | Kind::Webinar => rng.pick(CAMPAIGNS),
                _ => "",
            };
            let form = match kind {
                Kind::FormSubmit => rng.pick(&[
                    ("newsletter", 5),
                    ("contest", 2),
                    ("contact", 1),
                    ("ebook", 2),
                ]),
                _ => "",
            };
            let asset = match kind {
                Kind::ContentDownload => {
                    rng.pick(&[("case-study", 3), ("whitepaper", 3), ("ebook", 4)])
                }
                _ => "",
            };
            let duration = if matches!(kind, Kind::PageView) {
                (rng.unit() * 6.0).exp() as u32
            } else {
                0
            };
            out.push((
                Ev {
                    at: at.min(end),
                    seq,
                    kind,
                    url,
                    duration,
                    campaign,
                    form,
                    asset,
                    special: None,
                    offset_minutes,
                },
                0,
            ));
            seq += 1;
            at += (rng.unit() * 600.0 * 1e9) as i64 + 1_000_000_000;
        }
        remaining -= size;
    }
    // A few unsubscribe, and some of those come back.
    if rng.chance(0.03) && !out.is_empty() {
        let back = (rng.unit() * span as f64) as i64;
        out.push((
            special_event(end - back, seq, "unsubscribe", offset_minutes),
            0,
        ));
        seq += 1;
        if rng.chance(0.2) {
            let later = end - (rng.unit() * back as f64) as i64;
            out.push((special_event(later, seq, "resubscribe", offset_minutes), 0));
        }
    }
}

fn special_event(at: i64, seq: u32, kind: &'static str, offset_minutes: i32) -> Ev {
    Ev {
        at,
        seq,
        kind: Kind::PageView,
        url: "",
        duration: 0,
        campaign: "",
        form: "",
        asset: "",
        special: Some(kind),
        offset_minutes,
    }
}

fn type_name(e: &Ev) -> &'static str {
    if let Some(s) = e.special {
        return s;
    }
    match e.kind {
        Kind::PageView => "page_view",
        Kind::EmailOpen => "email_open",
        Kind::EmailClick => "email_click",
        Kind::FormSubmit => "form_submit",
        Kind::ContentDownload => "content_download",
        Kind::Webinar => "webinar_attended",
        Kind::DemoRequest => "demo_request",
        Kind::BadgeScan => "event_badge_scan",
        Kind::SocialLike => "social_like",
    }
}

/// RFC 3339 with the contact's usual offset (most are UTC).
fn timestamp_text(at: i64, offset_minutes: i32) -> String {
    let secs = Timestamp(at - at.rem_euclid(1_000_000_000));
    if offset_minutes == 0 {
        return secs.to_string();
    }
    let local = Timestamp(secs.0 + offset_minutes as i64 * 60 * 1_000_000_000).to_string();
    format!(
        "{}+{:02}:{:02}",
        local.trim_end_matches('Z'),
        offset_minutes / 60,
        offset_minutes % 60
    )
}

fn event_line(o: &GenerateOptions, width: usize, contact: u64, e: &Ev) -> String {
    let id = format!("e{contact:0width$}-{}", e.seq);
    let cid = format!("c{contact:0width$}");
    let ts = timestamp_text(e.at, e.offset_minutes);
    let ty = type_name(e);
    let duration = if e.duration > 0 {
        e.duration.to_string()
    } else {
        String::new()
    };
    match o.format {
        GenerateFormat::Csv => format!(
            "{id},{cid},{ty},{ts},{},{duration},{},{},{}\n",
            e.url, e.campaign, e.form, e.asset
        ),
        GenerateFormat::Ndjson => {
            let mut props = serde_json::Map::new();
            for (k, v) in [
                ("url", e.url),
                ("duration_s", duration.as_str()),
                ("campaign", e.campaign),
                ("form", e.form),
                ("asset", e.asset),
            ] {
                if !v.is_empty() {
                    props.insert(k.into(), v.into());
                }
            }
            let obj = serde_json::json!({"id": id, "contact_id": cid, "type": ty, "timestamp": ts, "properties": props});
            format!("{obj}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_print_local_time() {
        let t = Timestamp::parse("2026-03-22T10:00:00Z").unwrap();
        let s = timestamp_text(t.0, 120);
        assert_eq!(s, "2026-03-22T12:00:00+02:00");
        assert_eq!(Timestamp::parse(&s).unwrap(), t);
    }

    #[test]
    fn same_seed_same_files_and_exact_event_count() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let o = GenerateOptions {
            contacts: 5000,
            events: 40_000,
            seed: 7,
            end: Timestamp::parse(DEFAULT_END).unwrap(),
            format: GenerateFormat::Csv,
            outcomes: false,
            order: EventOrder::Contact,
        };
        let wa = generate(&o, a.path()).unwrap();
        generate(&o, b.path()).unwrap();
        let ea = std::fs::read(&wa.events_path).unwrap();
        assert_eq!(ea, std::fs::read(b.path().join("events.csv")).unwrap());
        assert_eq!(
            std::fs::read(&wa.contacts_path).unwrap(),
            std::fs::read(b.path().join("contacts.csv")).unwrap()
        );
        let lines = ea.iter().filter(|&&c| c == b'\n').count() as u64 - 1;
        assert_eq!(lines, wa.events);
        // Generated unsubscribes come on top of the asked-for events, and a
        // few lines are duplicated.
        assert!(wa.events >= 40_000 && wa.events < 42_000, "{}", wa.events);
        // In time order: the same lines (and the same for the same seed),
        // their instants never going back, contacts interleaved.
        let t = tempfile::tempdir().unwrap();
        let timed = GenerateOptions {
            order: EventOrder::Time,
            ..o.clone()
        };
        let wt = generate(&timed, t.path()).unwrap();
        assert_eq!(wt.events, wa.events);
        let et = std::fs::read_to_string(&wt.events_path).unwrap();
        let again = tempfile::tempdir().unwrap();
        generate(&timed, again.path()).unwrap();
        assert_eq!(
            et,
            std::fs::read_to_string(again.path().join("events.csv")).unwrap()
        );
        assert!(
            !t.path().join(".generate-runs").exists(),
            "the runs are removed"
        );
        let mut sorted_a: Vec<&str> = std::str::from_utf8(&ea).unwrap().lines().collect();
        let mut sorted_t: Vec<&str> = et.lines().collect();
        sorted_a.sort_unstable();
        sorted_t.sort_unstable();
        assert_eq!(sorted_a, sorted_t);
        let instants: Vec<i64> = et
            .lines()
            .skip(1)
            .map(|l| Timestamp::parse(l.split(',').nth(3).unwrap()).unwrap().0)
            .collect();
        assert!(instants.windows(2).all(|w| w[0] <= w[1]));
        let switches = et
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap())
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] != w[1])
            .count();
        assert!(
            switches as u64 > wt.events / 2,
            "contacts interleave: {switches}"
        );
    }
}
