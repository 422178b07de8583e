//! Live scores: the stored state of one contact and how it moves.
//!
//! Each contact row keeps its rule matches under the current model (`hits`,
//! 20 bytes each), and its *live score*: the score card at `scored_at`,
//! with `next_check_at`, the time at which time alone may change its band
//! or stage (see [`leadscore_core::timeline`]). Every change (an event, new
//! contact data, a model change, time passing) goes through
//! [`update_contact`], which re-evaluates with the core's `evaluate`, writes
//! band and stage transitions with their cause, and stores the new state,
//! inside the caller's transaction.

use std::collections::BTreeMap;

use leadscore_core::condition::Vocabulary;
use leadscore_core::scoring::{PropertyLookup, evaluate_sorted, sort_hits};
use leadscore_core::timeline::next_check_sorted;
use leadscore_core::timestamp::days_to_nanos;
use leadscore_core::{Hit, Model, ScoreCard, Timestamp, match_event};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Result, StoreError};
use crate::slots::Slots;

/// How far ahead the next change is looked for, in days.
pub const HORIZON_DAYS: f64 = 730.0;
/// Breakpoints looked at per search before checking again later.
const MAX_SEGMENTS: usize = 8;

/// Why a contact's band or stage changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// An event arrived (its id).
    Event(String),
    /// Time passed: points decayed, or an event left its window or came due.
    Decay,
    /// A new model version was set.
    Model(i64),
    /// The contact's attributes changed (or it was created).
    Data,
}

impl Cause {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            Cause::Event(id) => ("event", Some(id.clone())),
            Cause::Decay => ("decay", None),
            Cause::Model(v) => ("model", Some(format!("model version {v}"))),
            Cause::Data => ("data", None),
        }
    }
}

/// A contact's stored state, as read from its row.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Internal row id.
    pub rowid: i64,
    /// External contact id.
    pub ext_id: String,
    /// All attributes.
    pub attributes: BTreeMap<String, String>,
    /// Rule matches under the current model.
    pub hits: Vec<Hit<u64>>,
    /// Live band, if scored.
    pub band: Option<String>,
    /// Live stage.
    pub stage: Option<String>,
    /// When time alone may next change the contact.
    pub next_check_at: Option<i64>,
}

/// The raw columns of a contact row, before decoding.
pub type RawStored = (
    i64,
    String,
    String,
    Vec<u8>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

/// Columns read into [`Stored`], in order.
pub const STORED_COLUMNS: &str = "id, ext_id, attributes, hits, band, stage, next_check_at";

impl Stored {
    /// Reads a row selected with [`STORED_COLUMNS`].
    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawStored> {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
        ))
    }

    /// Decodes the raw columns.
    pub fn decode(raw: RawStored, slots: &Slots) -> Result<Stored> {
        let (rowid, ext_id, attributes, hits, band, stage, next_check_at) = raw;
        Ok(Stored {
            rowid,
            attributes: parse_map(&attributes)?,
            hits: slots.unpack(&hits)?,
            ext_id,
            band,
            stage,
            next_check_at,
        })
    }

    /// Loads a contact by external id.
    pub fn load(conn: &Connection, ext_id: &str, slots: &Slots) -> Result<Option<Stored>> {
        let raw = conn
            .prepare_cached(&format!(
                "SELECT {STORED_COLUMNS} FROM contacts WHERE ext_id = ?1"
            ))?
            .query_row([ext_id], Stored::from_row)
            .optional()?;
        raw.map(|raw| Stored::decode(raw, slots)).transpose()
    }

    /// Loads a contact by row id.
    pub fn load_rowid(conn: &Connection, rowid: i64, slots: &Slots) -> Result<Stored> {
        let raw = conn
            .prepare_cached(&format!(
                "SELECT {STORED_COLUMNS} FROM contacts WHERE id = ?1"
            ))?
            .query_row([rowid], Stored::from_row)?;
        Stored::decode(raw, slots)
    }
}

/// The `seq` range of a contact's events: `contact << 32 | n`.
pub fn event_range(contact: i64) -> (i64, i64) {
    (contact << 32, (contact << 32) | 0xFFFF_FFFF)
}

/// Parses a stored JSON object of text values.
pub fn parse_map(json: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))
}

/// The values of the attributes a model reads, indexed by attribute id.
pub fn model_values(
    vocabulary: &Vocabulary,
    map: &BTreeMap<String, String>,
) -> Vec<Option<Box<str>>> {
    vocabulary
        .attributes
        .iter()
        .map(|a| {
            map.get(a)
                .filter(|v| !v.is_empty())
                .map(|v| Box::from(v.as_str()))
        })
        .collect()
}

/// Event properties the model reads, by property id.
pub struct Props(pub Vec<Option<Box<str>>>);

impl Props {
    /// Picks the model's properties out of name/value pairs.
    pub fn new<'a>(
        vocabulary: &Vocabulary,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Props {
        let mut v = vec![None; vocabulary.properties.len()];
        for (k, val) in pairs {
            if let Some(p) = vocabulary.property(k)
                && !val.is_empty()
            {
                v[p.0 as usize] = Some(Box::from(val));
            }
        }
        Props(v)
    }
}

impl Props {
    /// Reads the model's properties straight out of a stored JSON object of
    /// text values (as [`parse_map`] then [`Props::new`] would, without
    /// building the map): other properties are skipped unread.
    pub fn from_json(vocabulary: &Vocabulary, json: &str) -> Result<Props> {
        let v = pick_json(
            vocabulary.properties.len(),
            |name| vocabulary.property(name).map(|p| p.0 as usize),
            json,
        )
        .map_err(|e| StoreError::Corrupt(format!("properties: {e}")))?;
        Ok(Props(v))
    }
}

/// The values of the attributes a model reads, straight out of a stored
/// JSON object of text values (as [`parse_map`] then [`model_values`]
/// would, without building the map).
pub fn model_values_json(vocabulary: &Vocabulary, json: &str) -> Result<Vec<Option<Box<str>>>> {
    attribute_values_json(&vocabulary.attributes, json)
}

/// The values of the named attributes, indexed as `names`, out of a stored
/// JSON object of text values; absent or empty values are `None`.
pub fn attribute_values_json(names: &[String], json: &str) -> Result<Vec<Option<Box<str>>>> {
    pick_json(
        names.len(),
        |name| names.iter().position(|a| a == name),
        json,
    )
    .map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))
}

/// Picks some values out of a JSON object of text values: `slot` gives
/// the index (below `len`) of each wanted key; other keys are skipped
/// unread, and a repeated key keeps its last value (as a map would).
fn pick_json(
    len: usize,
    slot: impl Fn(&str) -> Option<usize>,
    json: &str,
) -> serde_json::Result<Vec<Option<Box<str>>>> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(json);
    let picked = Pick { len, slot }.deserialize(&mut de)?;
    de.end()?;
    Ok(picked)
}

/// Deserializes the values [`pick_json`] wants.
struct Pick<F> {
    len: usize,
    slot: F,
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de, F: Fn(&str) -> Option<usize>> serde::de::DeserializeSeed<'de> for Pick<F> {
    type Value = Vec<Option<Box<str>>>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: Fn(&str) -> Option<usize>> serde::de::Visitor<'de> for Pick<F> {
    type Value = Vec<Option<Box<str>>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of text values")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut v = vec![None; self.len];
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match (self.slot)(&key) {
                Some(i) if i < self.len => {
                    let Text(value) = map.next_value::<Text<'de>>()?;
                    v[i] = (!value.is_empty()).then(|| Box::from(value.as_ref()));
                }
                _ => {
                    // Still a text value: the stored object holds nothing else.
                    map.next_value::<Text<'de>>()?;
                }
            }
        }
        Ok(v)
    }
}

impl PropertyLookup for Props {
    fn get(&self, id: leadscore_core::condition::PropId) -> Option<&str> {
        self.0.get(id.0 as usize).and_then(|v| v.as_deref())
    }
}

/// The rule matches of one event, keyed by its id.
pub fn event_hits(
    model: &Model,
    attributes: &[Option<Box<str>>],
    id: &str,
    event_type: &str,
    at: Timestamp,
    props: &Props,
    out: &mut Vec<Hit<u64>>,
) {
    let key = leadscore_batch::score::event_key(id);
    keyed_event_hits(model, attributes, key, event_type, at, props, out);
}

/// [`event_hits`] for an event whose key (the hash of its id) is known.
pub fn keyed_event_hits(
    model: &Model,
    attributes: &[Option<Box<str>>],
    key: u64,
    event_type: &str,
    at: Timestamp,
    props: &Props,
    out: &mut Vec<Hit<u64>>,
) {
    match_event(model, event_type, attributes, props, |target| {
        out.push(Hit { target, at, key })
    });
}

/// A contact's new live state, computed without touching the database (so
/// many can be computed in parallel), ready for [`write_update`].
pub struct Computed {
    /// The score card at the update time.
    pub card: ScoreCard,
    /// When time alone may next change band or stage (ns).
    pub next_check_at: Option<i64>,
    /// The hits, sorted and packed, when they changed.
    pub packed: Option<Vec<u8>>,
}

/// Evaluates a contact at `at` and finds its next check time; the hits
/// are packed for storing, under `slots` (the model's).
pub fn compute_update(
    (model, slots): (&Model, &Slots),
    attributes: &[Option<Box<str>>],
    hits: &mut Vec<Hit<u64>>,
    at: Timestamp,
) -> Computed {
    let mut computed = compute_live(model, attributes, hits, at);
    computed.packed = Some(slots.pack(hits));
    computed
}

/// [`compute_update`] for hits that are stored already (not packed).
pub fn compute_live(
    model: &Model,
    attributes: &[Option<Box<str>>],
    hits: &mut Vec<Hit<u64>>,
    at: Timestamp,
) -> Computed {
    // Sorted as evaluation reads them (also the order they are packed in):
    // on hits stored sorted, one pass that moves nothing.
    sort_hits(hits);
    let card = evaluate_sorted(model, attributes, None, hits, at, None);
    let until = Timestamp(at.0.saturating_add(days_to_nanos(HORIZON_DAYS)));
    let next_check_at = next_check_sorted(model, attributes, hits, at, until, MAX_SEGMENTS)
        .map(|t| t.0.max(at.0 + 1_000_000_000));
    Computed {
        card,
        next_check_at,
        packed: None,
    }
}

/// Records band and stage transitions against the contact's previous live
/// state and writes the new one.
#[allow(clippy::too_many_arguments)]
pub fn write_update(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    rowid: i64,
    computed: &Computed,
    previous: (Option<&str>, Option<&str>),
    at: Timestamp,
    cause: &Cause,
) -> Result<()> {
    record_transitions(
        conn,
        model,
        model_version,
        rowid,
        &computed.card,
        previous,
        at,
        cause,
    )?;
    write_live(conn, model, rowid, computed, at)
}

/// Records the band and stage transitions from `previous` to `card`'s, at
/// `at`, with the webhook deliveries they owe. The one place transitions
/// are written.
#[allow(clippy::too_many_arguments)]
fn record_transitions(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    rowid: i64,
    card: &ScoreCard,
    previous: (Option<&str>, Option<&str>),
    at: Timestamp,
    cause: &Cause,
) -> Result<()> {
    let band = card.band_name(model);
    let stage = card.stage_name(model);
    let (cause_name, detail) = cause.parts();
    let record = |kind: &str, from: Option<&str>, to: Option<&str>| -> Result<()> {
        if from != to {
            conn.prepare_cached(
                "INSERT INTO transitions(contact, at, kind, from_value, to_value, cause, detail, model_version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![rowid, at.0, kind, from, to, cause_name, detail, model_version])?;
            crate::webhooks::owe_deliveries(
                conn,
                conn.last_insert_rowid(),
                rowid,
                at,
                kind,
                (from, to),
                (cause_name, detail.as_deref()),
                model_version,
            )?;
        }
        Ok(())
    };
    record("band", previous.0, band)?;
    record("stage", previous.1, stage)
}

/// Writes a contact's live state (score card, time it is for, next check,
/// and the packed matches when they changed). Each UPDATE rewrites the
/// whole row, overflow pages included when its size changes.
fn write_live(
    conn: &Connection,
    model: &Model,
    rowid: i64,
    computed: &Computed,
    at: Timestamp,
) -> Result<()> {
    let card = &computed.card;
    let band = card.band_name(model);
    let stage = card.stage_name(model);
    let dims = serde_json::to_string(&card.dimensions)
        .map_err(|e| StoreError::Corrupt(format!("dimensions: {e}")))?;
    // One statement either way (see above).
    let live = params![
        dims,
        card.score,
        band,
        stage,
        card.disqualified,
        at.0,
        computed.next_check_at,
        rowid
    ];
    match &computed.packed {
        Some(packed) => conn
            .prepare_cached(
                "UPDATE contacts SET dims = ?1, score = ?2, band = ?3, stage = ?4,
                    disqualified = ?5, scored_at = ?6, next_check_at = ?7, hits = ?9 WHERE id = ?8",
            )?
            .execute([live, params![packed]].concat().as_slice())?,
        None => conn
            .prepare_cached(
                "UPDATE contacts SET dims = ?1, score = ?2, band = ?3, stage = ?4,
                    disqualified = ?5, scored_at = ?6, next_check_at = ?7 WHERE id = ?8",
            )?
            .execute(live)?,
    };
    Ok(())
}

/// Re-evaluates a contact at `at`, records band and stage transitions
/// against its stored live state, and writes the new live state.
#[allow(clippy::too_many_arguments)]
pub fn update_contact(
    conn: &Connection,
    (model, slots): (&Model, &Slots),
    model_version: i64,
    rowid: i64,
    attributes: &[Option<Box<str>>],
    hits: &mut Vec<Hit<u64>>,
    previous: (Option<&str>, Option<&str>),
    at: Timestamp,
    cause: &Cause,
) -> Result<ScoreCard> {
    let computed = compute_update((model, slots), attributes, hits, at);
    write_update(
        conn,
        model,
        model_version,
        rowid,
        &computed,
        previous,
        at,
        cause,
    )?;
    Ok(computed.card)
}

/// The live states time alone brings to a contact up to `until` (decay,
/// windows, events coming due), each at its own time; computed without the
/// database, so many contacts can be advanced in parallel.
pub fn time_steps(
    model: &Model,
    values: &[Option<Box<str>>],
    hits: &mut Vec<Hit<u64>>,
    next_check_at: Option<i64>,
    until: Timestamp,
) -> Vec<(Timestamp, Computed)> {
    let mut steps = Vec::new();
    let mut next = next_check_at;
    while let Some(t) = next.filter(|&t| t <= until.0) {
        // Time changes no rule match: the stored matches stay as they are.
        let c = compute_live(model, values, hits, Timestamp(t));
        next = c.next_check_at;
        steps.push((Timestamp(t), c));
        if steps.len() >= 10_000 {
            break; // a pathological model flapping every second: stop here
        }
    }
    steps
}

/// Writes the steps of [`time_steps`] with cause `decay`: every step's
/// transitions, and the live state of the last step only (the row is
/// rewritten once, not once per step). Returns the band and stage after
/// them.
pub fn write_steps(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    rowid: i64,
    steps: &[(Timestamp, Computed)],
    mut band: Option<String>,
    mut stage: Option<String>,
) -> Result<(Option<String>, Option<String>)> {
    for (t, c) in steps {
        record_transitions(
            conn,
            model,
            model_version,
            rowid,
            &c.card,
            (band.as_deref(), stage.as_deref()),
            *t,
            &Cause::Decay,
        )?;
        band = c.card.band_name(model).map(str::to_string);
        stage = c.card.stage_name(model).map(str::to_string);
    }
    if let Some((t, c)) = steps.last() {
        write_live(conn, model, rowid, c, *t)?;
    }
    Ok((band, stage))
}

/// Applies the changes time alone brings to a contact up to `until`,
/// recording each as a transition at its time. Returns the stored state
/// afterwards.
pub fn advance(
    conn: &Connection,
    model: &Model,
    model_version: i64,
    mut stored: Stored,
    until: Timestamp,
) -> Result<Stored> {
    if stored.next_check_at.is_none_or(|t| t > until.0) {
        return Ok(stored);
    }
    let values = model_values(&model.vocabulary, &stored.attributes);
    let steps = time_steps(
        model,
        &values,
        &mut stored.hits,
        stored.next_check_at,
        until,
    );
    let (band, stage) = write_steps(
        conn,
        model,
        model_version,
        stored.rowid,
        &steps,
        stored.band.take(),
        stored.stage.take(),
    )?;
    stored.band = band;
    stored.stage = stage;
    stored.next_check_at = steps.last().and_then(|(_, c)| c.next_check_at);
    Ok(stored)
}

/// Re-matches all of a contact's stored events under `model` (after its
/// attributes or the model changed).
pub fn rematch(
    conn: &Connection,
    model: &Model,
    rowid: i64,
    attributes: &[Option<Box<str>>],
) -> Result<Vec<Hit<u64>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, type, ts, properties FROM events WHERE seq BETWEEN ?1 AND ?2",
    )?;
    let (lo, hi) = event_range(rowid);
    let mut rows = stmt.query([lo, hi])?;
    let mut hits = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let ty: String = r.get(1)?;
        if !model.uses_event_type(&ty) {
            continue;
        }
        let ts: i64 = r.get(2)?;
        let props: String = r.get(3)?;
        let map = parse_map(&props)?;
        let props = Props::new(
            &model.vocabulary,
            map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        event_hits(
            model,
            attributes,
            &id,
            &ty,
            Timestamp(ts),
            &props,
            &mut hits,
        );
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_read_from_json_as_from_the_map() {
        let model = Model::from_toml(
            r#"
name = "p"
[[dimension]]
id = "interest"
[[rule]]
id = "pro-plan-pricing"
points = 5
dimension = "interest"
on = "page_view"
when = { all = [{ property = "url", contains = "/pricing" }, { property = "plan", equals = "pro" }] }
"#,
        )
        .unwrap();
        let v = &model.vocabulary;
        for json in [
            r#"{}"#,
            r#"{"url":"/pricing","other":"x"}"#,
            r#"{"a":"1","plan":"","url":"/p\u00e9\"q"}"#,
            r#"{"plan":"pro","url":"/pricing","zz":"{\"nested\":1}"}"#,
        ] {
            let map = parse_map(json).unwrap();
            let want = Props::new(v, map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            assert_eq!(Props::from_json(v, json).unwrap().0, want.0, "{json}");
        }
        assert!(Props::from_json(v, r#"{"url":"#).is_err());
        assert!(Props::from_json(v, r#"{"url":"a"} x"#).is_err());
    }

    #[test]
    fn attributes_read_from_json_as_from_the_map() {
        let names: Vec<String> = ["title", "country", "size"].map(String::from).to_vec();
        let vocabulary = Vocabulary {
            attributes: names.clone(),
            properties: Vec::new(),
        };
        for json in [
            r#"{}"#,
            r#"{"title":"VP Sales","industry":"software"}"#,
            r#"{"country":"","size":"50","title":"Eng\u00e9neer \"ops\""}"#,
            // A repeated key keeps its last value, as the map does.
            r#"{"title":"first","title":"second"}"#,
            // Names are matched exactly, after unescaping.
            r#"{"Title":"x","ti\u0074le":"escaped"}"#,
        ] {
            let want = model_values(&vocabulary, &parse_map(json).unwrap());
            assert_eq!(
                model_values_json(&vocabulary, json).unwrap(),
                want,
                "{json}"
            );
            assert_eq!(attribute_values_json(&names, json).unwrap(), want, "{json}");
        }
        // Anything but an object of text values is refused, read or not.
        for bad in [
            r#"{"title":1}"#,
            r#"{"other":["a"]}"#,
            r#"["a"]"#,
            r#"{"title":"a""#,
        ] {
            assert!(parse_map(bad).is_err(), "{bad}");
            assert!(model_values_json(&vocabulary, bad).is_err(), "{bad}");
        }
    }
}
