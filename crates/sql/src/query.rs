//! The scoring query, step by step as common table expressions:
//!
//! 1. `ls_contacts`: id and the attributes the model reads, as text.
//! 2. `ls_events`: the events of a type the model reads, not after as-of
//!    (with the properties, and the attributes event rules read).
//! 3. `ls_hits`, computed once: (contact, event id, rule, time) for each
//!    event eligible for an event rule (type, condition, the dimension's
//!    window) or of a requalifying type, found in one pass over the events;
//!    copies of an event count once.
//! 4. `ls_counted`: the hits that count under each rule's limit (a row
//!    number for `count`; an ordered fold for `count` per `per_days`).
//! 5. `ls_sums`: decayed points per contact and dimension; `ls_dq`, `ls_rq`:
//!    the latest disqualifying hit per rule and the latest requalifying
//!    event per type.
//! 6. The final select: clamped dimensions, the weighted score, band and
//!    stage, in the arithmetic order `leadscore_core::scoring` uses. Events
//!    of unknown contacts drop out here, at the join with `ls_contacts`.

use std::collections::BTreeSet;

use leadscore_core::Model;
use leadscore_core::condition::{Condition, Subject};
use leadscore_core::model::{Rule, RuleKind};
use leadscore_core::timestamp::{NANOS_PER_DAY, days_to_nanos};

use crate::condition::{Conditions, Value};
use crate::dialect::Dialect;
use crate::{AsOf, Options, SqlError};

pub(crate) struct Query<'a> {
    model: &'a Model,
    options: &'a Options,
    d: Dialect,
    as_of: String,
}

/// How a rule's eligible events become counted ones.
enum Counting {
    All,
    First(u32),
    Sliding(u32, i64),
}

fn counting(rule: &Rule) -> Counting {
    match &rule.limit {
        None => Counting::All,
        Some(l) => match l.per_nanos {
            None => Counting::First(l.count),
            Some(per) => Counting::Sliding(l.count, per),
        },
    }
}

fn attributes_read(c: &Condition, into: &mut BTreeSet<u16>) {
    match c {
        Condition::All(p) | Condition::Any(p) => p.iter().for_each(|c| attributes_read(c, into)),
        Condition::Not(inner) => attributes_read(inner, into),
        Condition::Leaf {
            subject: Subject::Attribute(a),
            ..
        } => {
            into.insert(a.0);
        }
        Condition::Leaf { .. } => {}
    }
}

/// Per contact, the time of the latest hit of each rule, as columns named
/// by `rules` (rule number, column name).
fn latest_hits(rules: &[(usize, String)]) -> String {
    let cols: Vec<String> = rules
        .iter()
        .map(|(r, name)| format!("MAX(CASE WHEN rule = {r} THEN ts END) AS {name}"))
        .collect();
    let ids: Vec<String> = rules.iter().map(|(r, _)| r.to_string()).collect();
    format!(
        "SELECT contact_id, {} FROM ls_hits WHERE rule IN ({}) GROUP BY contact_id",
        cols.join(", "),
        ids.join(", ")
    )
}

impl<'a> Query<'a> {
    pub(crate) fn new(model: &'a Model, options: &'a Options) -> Query<'a> {
        let d = options.dialect;
        let as_of = match options.as_of {
            AsOf::At(t) => d.bigint(t.0),
            AsOf::Now => d.now_nanos(),
        };
        Query {
            model,
            options,
            d,
            as_of,
        }
    }

    fn event_rules(&self) -> impl Iterator<Item = (usize, &'a Rule)> {
        self.model
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.kind, RuleKind::Event { .. }))
    }

    pub(crate) fn write(&self) -> Result<String, SqlError> {
        let d = self.d;
        let mut ctes: Vec<String> = Vec::new();
        ctes.push(format!("ls_contacts AS (\n{}\n)", self.contacts()?));
        let event_rules: Vec<(usize, &Rule)> = self.event_rules().collect();
        let dq: Vec<(usize, &Rule)> = event_rules
            .iter()
            .copied()
            .filter(|(_, r)| r.disqualify)
            .collect();
        let requalify: BTreeSet<&str> = dq
            .iter()
            .filter_map(|(_, r)| r.requalify_on.as_deref())
            .collect();
        let requalify: Vec<&str> = requalify.into_iter().collect();
        if !event_rules.is_empty() {
            ctes.push(format!("ls_events AS (\n{}\n)", self.events()?));
            ctes.push(format!(
                "ls_hits AS {}(\n{}\n)",
                d.materialized(),
                self.hits(&event_rules, &requalify)?
            ));
        }
        let scoring: Vec<(usize, &Rule)> = event_rules
            .iter()
            .copied()
            .filter(|(_, r)| !r.disqualify && r.dimension.is_some())
            .collect();
        if !scoring.is_empty() {
            ctes.extend(self.counted(&scoring)?);
            ctes.push(format!("ls_sums AS (\n{}\n)", self.sums(&scoring)));
        }
        if !dq.is_empty() {
            let latest: Vec<(usize, String)> =
                dq.iter().map(|(i, _)| (*i, format!("q{i}"))).collect();
            ctes.push(format!("ls_dq AS (\n{}\n)", latest_hits(&latest)));
        }
        if !requalify.is_empty() {
            let latest: Vec<(usize, String)> = (0..requalify.len())
                .map(|k| (self.requalify_rule(k), format!("rq{k}")))
                .collect();
            ctes.push(format!("ls_rq AS (\n{}\n)", latest_hits(&latest)));
        }
        ctes.push(format!(
            "ls_raw AS (\n{}\n)",
            self.raw(!scoring.is_empty(), &dq, &requalify)?
        ));
        ctes.push(format!("ls_scored AS (\n{}\n)", self.scored()));
        let recursive = if d == Dialect::Postgres && self.has_sliding(&scoring) {
            "WITH RECURSIVE"
        } else {
            "WITH"
        };
        Ok(format!(
            "{}{recursive}\n{}\n{};\n",
            d.preamble(),
            ctes.join(",\n"),
            self.output()?
        ))
    }

    fn has_sliding(&self, rules: &[(usize, &Rule)]) -> bool {
        rules
            .iter()
            .any(|(_, r)| matches!(counting(r), Counting::Sliding(..)))
    }

    fn attribute_expr(&self, name: &str) -> Result<String, SqlError> {
        let d = self.d;
        let cols = &self.options.columns;
        Ok(match &cols.attributes {
            Some(json) => d.field(&d.ident(json)?, name)?,
            // The id column is the id, not an attribute (as in a CSV file).
            None if name == cols.contact => format!("CAST(NULL AS {})", d.text_type()),
            None => d.as_text(&d.ident(name)?),
        })
    }

    fn property_expr(&self, name: &str) -> Result<String, SqlError> {
        let d = self.d;
        let cols = &self.options.columns;
        Ok(match &cols.properties {
            Some(json) => d.field(&d.ident(json)?, name)?,
            None if [
                &cols.id,
                &cols.contact_id,
                &cols.event_type,
                &cols.timestamp,
            ]
            .iter()
            .any(|c| c.as_str() == name) =>
            {
                format!("CAST(NULL AS {})", d.text_type())
            }
            None => d.as_text(&d.ident(name)?),
        })
    }

    fn contacts(&self) -> Result<String, SqlError> {
        let d = self.d;
        let mut cols = vec![format!(
            "{} AS id",
            d.as_text(&d.ident(&self.options.columns.contact)?)
        )];
        for (i, name) in self.model.vocabulary.attributes.iter().enumerate() {
            cols.push(format!("{} AS a{i}", self.attribute_expr(name)?));
        }
        Ok(format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            d.table(&self.options.contacts_table)?
        ))
    }

    fn events(&self) -> Result<String, SqlError> {
        let d = self.d;
        let c = &self.options.columns;
        let types: Result<Vec<String>, SqlError> =
            self.model.event_types().iter().map(|t| d.text(t)).collect();
        let mut inner = vec![
            format!("{} AS id", d.as_text(&d.ident(&c.id)?)),
            format!("{} AS contact_id", d.as_text(&d.ident(&c.contact_id)?)),
            format!("{} AS type", d.as_text(&d.ident(&c.event_type)?)),
            format!("{} AS ts", d.epoch_nanos(&d.ident(&c.timestamp)?)),
        ];
        let mut outer = vec![
            "e.id".to_string(),
            "e.contact_id".into(),
            "e.type".into(),
            "e.ts".into(),
        ];
        for (i, name) in self.model.vocabulary.properties.iter().enumerate() {
            inner.push(format!("{} AS p{i}", self.property_expr(name)?));
            outer.push(format!("e.p{i}"));
        }
        let mut read = BTreeSet::new();
        for (_, r) in self.event_rules() {
            if let Some(w) = &r.when {
                attributes_read(w, &mut read);
            }
        }
        // Unknown contacts drop out at the final join with `ls_contacts`;
        // the events meet the contacts here only when a rule reads both.
        let join = if read.is_empty() {
            ""
        } else {
            " JOIN ls_contacts c ON c.id = e.contact_id"
        };
        for a in read {
            outer.push(format!("c.a{a}"));
        }
        Ok(format!(
            "SELECT {outer} FROM (\n  SELECT {inner} FROM {table} WHERE {type_col} IN ({types})\n) e{join} WHERE e.ts <= {as_of}",
            outer = outer.join(", "),
            inner = inner.join(", "),
            table = d.table(&self.options.events_table)?,
            type_col = d.as_text(&d.ident(&c.event_type)?),
            types = types?.join(", "),
            as_of = self.as_of,
        ))
    }

    /// The rule number that stands for "an event of requalifying type
    /// number `k`" among the hits (after the model's own rules).
    fn requalify_rule(&self, k: usize) -> usize {
        self.model.rules.len() + k
    }

    fn condition(
        &self,
        place: String,
        condition: &Condition,
        subject: &dyn Fn(&Subject) -> Value,
    ) -> Result<String, SqlError> {
        Conditions {
            dialect: self.d,
            place,
            subject,
        }
        .sql(condition)
    }

    /// One pass over the events: each event yields a row per rule it is
    /// eligible for (and per requalifying type it has); repeated copies of
    /// an event (same contact, id, rule and time) count once.
    fn hits(&self, rules: &[(usize, &Rule)], requalify: &[&str]) -> Result<String, SqlError> {
        let d = self.d;
        let subject = |s: &Subject| match s {
            Subject::Attribute(a) => Value::Text(format!("a{}", a.0)),
            Subject::Property(p) => Value::Text(format!("p{}", p.0)),
            // Validation keeps dimensions and the score to stages.
            Subject::Dimension(_) | Subject::Score => Value::Text("NULL".into()),
        };
        let mut items = Vec::new();
        for (i, rule) in rules {
            let RuleKind::Event { on } = &rule.kind else {
                continue;
            };
            let mut filter = vec![format!("type = {}", d.text(on)?)];
            if let Some(w) = &rule.when {
                filter.push(self.condition(format!("rule {:?}", rule.id), w, &subject)?);
            }
            if let Some(w) = rule
                .dimension
                .and_then(|x| self.model.dimensions[x].window_days)
            {
                filter.push(format!(
                    "ts > {} - {}",
                    self.as_of,
                    d.bigint(days_to_nanos(w))
                ));
            }
            items.push(format!("CASE WHEN {} THEN {i} END", filter.join(" AND ")));
        }
        for (k, t) in requalify.iter().enumerate() {
            items.push(format!(
                "CASE WHEN type = {} THEN {} END",
                d.text(t)?,
                self.requalify_rule(k)
            ));
        }
        // Unnesting only the events that hit something is twice as fast in
        // DuckDB as unnesting every event's (mostly empty) array.
        Ok(format!(
            "SELECT DISTINCT contact_id, id, rule, ts FROM (SELECT contact_id, id, ts, {} AS rule FROM (SELECT contact_id, id, ts, {} AS l FROM ls_events) m WHERE {} > 0) h",
            d.unnest("l"),
            d.present(&items),
            d.len("l")
        ))
    }

    /// `ls_counted` (and, for PostgreSQL, the walks it reads).
    fn counted(&self, rules: &[(usize, &Rule)]) -> Result<Vec<String>, SqlError> {
        let d = self.d;
        let mut ctes = Vec::new();
        let mut parts = Vec::new();
        let all: Vec<String> = rules
            .iter()
            .filter(|(_, r)| matches!(counting(r), Counting::All))
            .map(|(i, _)| i.to_string())
            .collect();
        if !all.is_empty() {
            parts.push(format!(
                "SELECT contact_id, rule, ts FROM ls_hits WHERE rule IN ({})",
                all.join(", ")
            ));
        }
        let first: Vec<(usize, u32)> = rules
            .iter()
            .filter_map(|(i, r)| match counting(r) {
                Counting::First(n) => Some((*i, n)),
                _ => None,
            })
            .collect();
        if !first.is_empty() {
            let ids: Vec<String> = first.iter().map(|(i, _)| i.to_string()).collect();
            let caps: Vec<String> = first
                .iter()
                .map(|(i, n)| format!("WHEN {i} THEN {n}"))
                .collect();
            parts.push(format!(
                "SELECT contact_id, rule, ts FROM (SELECT contact_id, rule, ts, row_number() OVER (PARTITION BY contact_id, rule ORDER BY ts) AS n FROM ls_hits WHERE rule IN ({})) f WHERE n <= CASE rule {} END",
                ids.join(", "),
                caps.join(" ")
            ));
        }
        let sliding: Vec<(usize, u32, String)> = rules
            .iter()
            .filter_map(|(i, r)| match counting(r) {
                Counting::Sliding(count, per) => Some((*i, count, d.bigint(per))),
                _ => None,
            })
            .collect();
        let ids: Vec<String> = sliding.iter().map(|(i, ..)| i.to_string()).collect();
        let ids = ids.join(", ");
        // DuckDB and Spark: one group per (contact, rule), its times in
        // order, folded by the rule's own `count` per `per_days`.
        let folded = |ordered: &str, fold: &dyn Fn(&u32, &String) -> String| {
            let folds: Vec<String> = sliding
                .iter()
                .map(|(i, count, per)| format!("WHEN {i} THEN {}", fold(count, per)))
                .collect();
            format!(
                "SELECT contact_id, rule, {} AS ts FROM (SELECT contact_id, rule, {ordered} AS l FROM ls_hits WHERE rule IN ({ids}) GROUP BY contact_id, rule) s",
                d.unnest(&format!("CASE rule {} END", folds.join(" ")))
            )
        };
        match d {
            _ if sliding.is_empty() => {}
            Dialect::DuckDb => parts.push(folded("list(ts ORDER BY ts)", &|count, per| {
                format!(
                    "list_reduce(list_transform(l, t -> [t]), (acc, x) -> CASE WHEN len(acc) < {count} OR acc[len(acc) - {count} + 1] <= x[1] - {per} THEN list_concat(acc, x) ELSE acc END)"
                )
            })),
            Dialect::Spark => parts.push(folded("sort_array(collect_list(ts))", &|count, per| {
                format!(
                    "aggregate(l, CAST(array() AS ARRAY<BIGINT>), (acc, x) -> CASE WHEN size(acc) < {count} THEN concat(acc, array(x)) WHEN acc[size(acc) - {count}] <= x - {per} THEN concat(acc, array(x)) ELSE acc END)"
                )
            })),
            // A recursive walk per rule: PostgreSQL has no fold over arrays.
            Dialect::Postgres => {
                for (i, count, per) in &sliding {
                    ctes.push(format!(
                        "ls_seq{i} AS (\nSELECT contact_id, ts, row_number() OVER (PARTITION BY contact_id ORDER BY ts) AS n FROM ls_hits WHERE rule = {i}\n)"
                    ));
                    ctes.push(format!(
                        "ls_walk{i} (contact_id, n, acc) AS (\nSELECT contact_id, n, ARRAY[ts] FROM ls_seq{i} WHERE n = 1\nUNION ALL\nSELECT s.contact_id, s.n, CASE WHEN cardinality(w.acc) < {count} OR w.acc[cardinality(w.acc) - {count} + 1] <= s.ts - {per} THEN w.acc || s.ts ELSE w.acc END FROM ls_walk{i} w JOIN ls_seq{i} s ON s.contact_id = w.contact_id AND s.n = w.n + 1\n)"
                    ));
                    parts.push(format!(
                        "SELECT contact_id, {i} AS rule, unnest(acc) AS ts FROM (SELECT DISTINCT ON (contact_id) contact_id, acc FROM ls_walk{i} ORDER BY contact_id, n DESC) s{i}"
                    ));
                }
            }
        }
        ctes.push(format!(
            "ls_counted AS (\n{}\n)",
            parts.join("\nUNION ALL\n")
        ));
        Ok(ctes)
    }

    fn sums(&self, rules: &[(usize, &Rule)]) -> String {
        let d = self.d;
        let mut contribution = Vec::new();
        let mut dimension = Vec::new();
        for (i, rule) in rules {
            let Some(dim) = rule.dimension else { continue };
            let points = d.double(rule.points);
            let c = match self.model.dimensions[dim].half_life_days {
                Some(h) => format!(
                    "{points} * power(CAST(2 AS {t}), -(CAST({as_of} - ts AS {t}) / {day}) / {h})",
                    t = d.double_type(),
                    as_of = self.as_of,
                    day = d.double(NANOS_PER_DAY as f64),
                    h = d.double(h),
                ),
                None => points,
            };
            contribution.push(format!("WHEN {i} THEN {c}"));
            dimension.push(format!("WHEN {i} THEN {dim}"));
        }
        let sums: Vec<String> = (0..self.model.dimensions.len())
            .map(|k| format!("SUM(CASE WHEN dim = {k} THEN c END) AS r{k}"))
            .collect();
        format!(
            "SELECT contact_id, {} FROM (SELECT contact_id, CASE rule {} END AS dim, CASE rule {} END AS c FROM ls_counted) k GROUP BY contact_id",
            sums.join(", "),
            dimension.join(" "),
            contribution.join(" ")
        )
    }

    fn contact_subject(s: &Subject) -> Value {
        match s {
            Subject::Attribute(a) => Value::Text(format!("c.a{}", a.0)),
            Subject::Dimension(k) => Value::Number(format!("v{k}")),
            Subject::Score => Value::Number("score".into()),
            Subject::Property(_) => Value::Text("NULL".into()),
        }
    }

    /// Whether an attribute rule matches the contact (no `when`: always).
    fn attribute_rule_holds(&self, rule: &Rule) -> Result<String, SqlError> {
        match &rule.when {
            Some(w) => self.condition(format!("rule {:?}", rule.id), w, &Self::contact_subject),
            None => Ok("TRUE".into()),
        }
    }

    fn raw(
        &self,
        sums: bool,
        dq: &[(usize, &Rule)],
        requalify: &[&str],
    ) -> Result<String, SqlError> {
        let d = self.d;
        let zero = d.double(0.0);
        let mut cols = vec!["c.id".to_string()];
        for k in 0..self.model.vocabulary.attributes.len() {
            cols.push(format!("c.a{k}"));
        }
        let mut disqualified = Vec::new();
        for (k, _) in self.model.dimensions.iter().enumerate() {
            let mut terms = vec![zero.clone()];
            for rule in &self.model.rules {
                if rule.kind != RuleKind::Attribute || rule.disqualify || rule.dimension != Some(k)
                {
                    continue;
                }
                let holds = self.attribute_rule_holds(rule)?;
                terms.push(format!(
                    "(CASE WHEN {holds} THEN {} ELSE {zero} END)",
                    d.double(rule.points)
                ));
            }
            if sums {
                terms.push(format!("COALESCE(s.r{k}, {zero})"));
            }
            cols.push(format!("({}) AS r{k}", terms.join(" + ")));
        }
        for rule in &self.model.rules {
            if rule.kind == RuleKind::Attribute && rule.disqualify {
                disqualified.push(self.attribute_rule_holds(rule)?);
            }
        }
        for (i, rule) in dq {
            let lifted = match rule.requalify_on.as_deref() {
                Some(t) => {
                    let k = requalify.iter().position(|r| *r == t).unwrap_or(0);
                    format!(" AND NOT COALESCE(r.rq{k} > q.q{i}, FALSE)")
                }
                None => String::new(),
            };
            disqualified.push(format!("(q.q{i} IS NOT NULL{lifted})"));
        }
        let dq_expr = if disqualified.is_empty() {
            "FALSE".to_string()
        } else {
            disqualified.join(" OR ")
        };
        cols.push(format!("({dq_expr}) AS dq"));
        let mut from = "ls_contacts c".to_string();
        if sums {
            from.push_str(" LEFT JOIN ls_sums s ON s.contact_id = c.id");
        }
        if !dq.is_empty() {
            from.push_str(" LEFT JOIN ls_dq q ON q.contact_id = c.id");
        }
        if !requalify.is_empty() {
            from.push_str(" LEFT JOIN ls_rq r ON r.contact_id = c.id");
        }
        Ok(format!("SELECT {} FROM {from}", cols.join(", ")))
    }

    fn scored(&self) -> String {
        let d = self.d;
        let mut cols = vec!["id".to_string()];
        for k in 0..self.model.vocabulary.attributes.len() {
            cols.push(format!("a{k}"));
        }
        let mut terms = Vec::new();
        for (k, (dim, w)) in self
            .model
            .dimensions
            .iter()
            .zip(&self.model.weights)
            .enumerate()
        {
            let v = format!(
                "LEAST(GREATEST(r{k}, {}), {})",
                d.double(dim.min),
                d.double(dim.max)
            );
            terms.push(format!(
                "{} * ({v} - {}) / ({} - {})",
                d.double(*w),
                d.double(dim.min),
                d.double(dim.max),
                d.double(dim.min)
            ));
            cols.push(format!("{v} AS v{k}"));
        }
        let total: f64 = self.model.weights.iter().fold(0.0, |t, w| t + w);
        cols.push("dq".into());
        cols.push(format!(
            "CASE WHEN dq THEN {} ELSE LEAST(GREATEST({} * ({}) / {}, {}), {}) END AS score",
            d.double(0.0),
            d.double(100.0),
            terms.join(" + "),
            d.double(total),
            d.double(0.0),
            d.double(100.0)
        ));
        format!("SELECT {} FROM ls_raw", cols.join(", "))
    }

    fn output(&self) -> Result<String, SqlError> {
        let d = self.d;
        let mut cols = vec![format!("id AS {}", d.ident("id")?)];
        for (k, dim) in self.model.dimensions.iter().enumerate() {
            cols.push(format!("v{k} AS {}", d.ident(&dim.id)?));
        }
        cols.push(format!("score AS {}", d.ident("score")?));
        let mut band = vec!["CASE WHEN dq THEN ".to_string() + &d.text("disqualified")?];
        for b in &self.model.bands {
            band.push(format!(
                "WHEN score >= {} THEN {}",
                d.double(b.min_score),
                d.text(&b.id)?
            ));
        }
        cols.push(format!("{} END AS {}", band.join(" "), d.ident("band")?));
        let subject = |s: &Subject| match s {
            Subject::Attribute(a) => Value::Text(format!("a{}", a.0)),
            other => Self::contact_subject(other),
        };
        let mut stage = vec![format!("CASE WHEN dq THEN CAST(NULL AS {})", d.text_type())];
        for s in &self.model.stages {
            let holds = self.condition(format!("stage {:?}", s.id), &s.when, &subject)?;
            stage.push(format!("WHEN {holds} THEN {}", d.text(&s.id)?));
        }
        cols.push(format!("{} END AS {}", stage.join(" "), d.ident("stage")?));
        cols.push(format!("dq AS {}", d.ident("disqualified")?));
        Ok(format!("SELECT {} FROM ls_scored", cols.join(", ")))
    }
}
