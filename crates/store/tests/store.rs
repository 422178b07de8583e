//! The lead database against the batch scorer, and its promises: imports
//! are idempotent, rejects keep good rows, deletes erase, model versions
//! re-score, files of another schema are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use leadscore_batch::{ContactTable, score_files};
use leadscore_core::{Model, ScoreCard, Timestamp};
use leadscore_store::{
    ContactScore, ImportOptions, Placed, ScoreFilter, Store, StoreError, StoreReader,
};
use proptest::prelude::*;

const MODEL: &str = r#"
name = "store-test"
[[dimension]]
id = "fit"
min = -10
max = 40
[[dimension]]
id = "engagement"
min = -20
max = 100
half_life_days = 9.5
window_days = 30
[[band]]
id = "hot"
min_score = 50
[[band]]
id = "cold"
min_score = 0
[[stage]]
id = "mql"
when = { score = true, gte = 30 }
[[rule]]
id = "vp"
dimension = "fit"
points = 25
when = { attribute = "title", matches = "(?i)vp|head" }
[[rule]]
id = "student"
disqualify = true
when = { attribute = "title", equals = "student" }
[[rule]]
id = "pricing"
dimension = "engagement"
on = "page_view"
points = 30
when = { property = "url", starts_with = "/pricing" }
limit = { count = 2, per_days = 3 }
[[rule]]
id = "engineer-visits"
dimension = "engagement"
on = "page_view"
points = -4
when = { attribute = "title", equals = "engineer" }
[[rule]]
id = "click"
dimension = "engagement"
on = "email_click"
points = 12
limit = { count = 3 }
[[rule]]
id = "unsubscribed"
on = "unsubscribe"
disqualify = true
requalify_on = "resubscribe"
"#;

const TITLES: [&str; 5] = ["VP Sales", "Engineer", "student", "Head of IT", ""];
const TYPES: [&str; 5] = [
    "page_view",
    "email_click",
    "unsubscribe",
    "resubscribe",
    "email_open",
];
const URLS: [&str; 3] = ["/pricing", "/blog", "/pricing/enterprise"];

fn t(minutes: i64) -> Timestamp {
    Timestamp(Timestamp::parse("2026-05-01T00:00:00Z").unwrap().0 + minutes * 60_000_000_000)
}

fn options(now: Timestamp, batch: usize) -> ImportOptions {
    let mut o = ImportOptions::at(now);
    o.batch_size = batch;
    o
}

fn noop() -> impl FnMut(u64, u64, u64) {
    |_, _, _| {}
}

/// One step of the scenario: contacts (id, title) or events
/// (id, contact, type, minutes, url).
#[derive(Clone, Debug)]
enum Step {
    Contacts(Vec<(usize, usize)>),
    Events(Vec<(usize, usize, usize, i64, usize)>),
}

fn write_contacts(path: &Path, rows: &[(usize, usize)]) {
    let mut s = String::from("id,title\n");
    for (c, title) in rows {
        s.push_str(&format!("c{c},{}\n", TITLES[*title]));
    }
    std::fs::write(path, s).unwrap();
}

fn write_events(path: &Path, rows: &[(usize, usize, usize, i64, usize)]) {
    let mut s = String::from("id,contact_id,type,timestamp,url\n");
    for (id, c, ty, m, url) in rows {
        s.push_str(&format!(
            "e{id},c{c},{},{},{}\n",
            TYPES[*ty],
            t(*m),
            URLS[*url]
        ));
    }
    std::fs::write(path, s).unwrap();
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::collection::vec((0usize..6, 0usize..TITLES.len()), 1..6).prop_map(Step::Contacts),
        proptest::collection::vec(
            (
                0usize..40,
                0usize..7,
                0usize..TYPES.len(),
                0i64..60 * 24 * 50,
                0usize..URLS.len()
            ),
            1..25
        )
        .prop_map(Step::Events),
    ]
}

/// Scores the same data with the batch scorer: the latest attributes per
/// contact, every distinct event (first seen wins), contacts in the order
/// the store first saw them.
fn batch_scores(
    dir: &Path,
    order: &[usize],
    titles: &[Option<usize>],
    events: &[(usize, usize, usize, i64, usize)],
    as_of: Timestamp,
) -> Vec<(String, ScoreCard)> {
    let model = Model::from_toml(MODEL).unwrap();
    let contacts = dir.join("all-contacts.csv");
    let mut s = String::from("id,title\n");
    for &c in order {
        s.push_str(&format!("c{c},{}\n", titles[c].map_or("", |t| TITLES[t])));
    }
    std::fs::write(&contacts, s).unwrap();
    let ev = dir.join("all-events.csv");
    write_events(&ev, events);
    let table = ContactTable::load(&[contacts], &model.vocabulary).unwrap();
    let scores = score_files(&model, &table, &[ev], as_of).unwrap();
    (0..table.len())
        .map(|i| (table.id(i).to_string(), scores.cards[i].clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// After every step, the database's scores equal `leadscore score` over
    /// the same contacts and distinct events at the same as-of, and every
    /// stored live score matches its events.
    #[test]
    fn store_equals_batch_after_every_step(
        steps in proptest::collection::vec(step_strategy(), 1..7),
        batch in 1usize..8,
        list_batch in 1usize..5,
        as_of_minutes in 0i64..60 * 24 * 60,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("test.db");
        let now = t(60 * 24 * 25);
        let mut store = Store::create(&db, MODEL, now).unwrap();
        store.set_list_batch(list_batch);
        let mut order: Vec<usize> = Vec::new();
        let mut titles: Vec<Option<usize>> = vec![None; 7];
        let mut events = Vec::new();
        let mut seen_ids = std::collections::HashSet::new();
        for (k, step) in steps.iter().enumerate() {
            let file = dir.path().join(format!("step{k}.csv"));
            match step {
                Step::Contacts(rows) => {
                    write_contacts(&file, rows);
                    store.import_contacts(&file, &options(now, batch), &mut noop()).unwrap();
                    for (c, title) in rows {
                        if !order.contains(c) { order.push(*c); }
                        // Merge: an empty cell does not remove the title.
                        if !TITLES[*title].is_empty() { titles[*c] = Some(*title); }
                    }
                }
                Step::Events(rows) => {
                    write_events(&file, rows);
                    store.import_events(&file, &options(now, batch), &mut noop()).unwrap();
                    for r in rows {
                        if !order.contains(&r.1) { order.push(r.1); }
                        if seen_ids.insert(r.0) { events.push(*r); }
                    }
                }
            }
            let as_of = t(as_of_minutes);
            let got: Vec<(String, ScoreCard)> = store
                .scores(as_of, &ScoreFilter::default())
                .unwrap()
                .into_iter()
                .map(|s| (s.id, s.card))
                .collect();
            let want = batch_scores(dir.path(), &order, &titles, &events, as_of);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(store.check().unwrap(), Vec::<String>::new());
            // Band and stage filters (which trust the stored live state
            // where it is exact) keep exactly the matching contacts, at
            // this as-of and at the import time.
            let model = Model::from_toml(MODEL).unwrap();
            for at in [as_of, now] {
                let all = class_filters_keep_their_members(&store, &model, at)?;
                // Ranked lists equal sorting everything and taking the
                // first ones, whatever is kept and however ties break.
                for band in [None, Some("cold")] {
                    let filter = ScoreFilter { band: band.map(str::to_owned), ..ScoreFilter::default() };
                    let placed: Vec<(usize, &ContactScore)> = all
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| band.is_none() || s.card.band_name(&model) == band)
                        .collect();
                    let n = placed.len();
                    for keep in [0, 1, 2, n.saturating_sub(1), n, n + 3] {
                        let by_place = |a: &Placed, b: &Placed| {
                            b.score.card.score.total_cmp(&a.score.card.score).then(a.place.cmp(&b.place))
                        };
                        let got = store.ranked(at, &filter, keep, by_place).unwrap();
                        let mut want = placed.clone();
                        want.sort_by(|a, b| b.1.card.score.total_cmp(&a.1.card.score).then(a.0.cmp(&b.0)));
                        want.truncate(keep);
                        prop_assert_eq!(got.total, n);
                        prop_assert_eq!(
                            got.items.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>(),
                            want.iter().map(|(_, s)| (&s.id, &s.card)).collect::<Vec<_>>(),
                            "highest first, keep {}, band {:?}", keep, band
                        );
                        let by_id = |a: &Placed, b: &Placed| {
                            a.score.card.score.total_cmp(&b.score.card.score).then_with(|| a.score.id.cmp(&b.score.id))
                        };
                        let got = store.ranked(at, &filter, keep, by_id).unwrap();
                        want = placed.clone();
                        want.sort_by(|a, b| a.1.card.score.total_cmp(&b.1.card.score).then_with(|| a.1.id.cmp(&b.1.id)));
                        want.truncate(keep);
                        prop_assert_eq!(
                            got.items.iter().map(|s| &s.id).collect::<Vec<_>>(),
                            want.iter().map(|(_, s)| &s.id).collect::<Vec<_>>(),
                            "lowest first, keep {}, band {:?}", keep, band
                        );
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A band or stage filter reads only the contacts stored in that band or
    /// stage and those whose stored state may be stale: its lists equal
    /// filtering every contact's evaluated card, whatever times the contacts
    /// were written (imports at different times, ticks), at as-ofs before,
    /// between and after those writes, and past the search horizon.
    #[test]
    fn band_and_stage_filters_equal_filtering_everyone(
        steps in proptest::collection::vec((step_strategy(), 0i64..60 * 24 * 60, any::<bool>()), 1..6),
        as_ofs in proptest::collection::vec(0i64..60 * 24 * 1000, 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("test.db");
        let mut store = Store::create(&db, MODEL, t(0)).unwrap();
        let model = Model::from_toml(MODEL).unwrap();
        let mut now = 0;
        let mut times = vec![0];
        for (k, (step, later, tick)) in steps.iter().enumerate() {
            now += later;
            times.push(now);
            let file = dir.path().join(format!("step{k}.csv"));
            match step {
                Step::Contacts(rows) => {
                    write_contacts(&file, rows);
                    store.import_contacts(&file, &options(t(now), 3), &mut noop()).unwrap();
                }
                Step::Events(rows) => {
                    write_events(&file, rows);
                    store.import_events(&file, &options(t(now), 3), &mut noop()).unwrap();
                }
            }
            if *tick {
                store.tick(t(now + later / 2)).unwrap();
            }
        }
        prop_assert_eq!(store.check().unwrap(), Vec::<String>::new());
        let last = *times.last().unwrap();
        let mut ats: Vec<i64> = as_ofs.clone();
        ats.extend([last, last + 60 * 24 * 731, last + 60 * 24 * 2000]);
        ats.extend(times.iter().map(|m| m - 1));
        for at in ats.into_iter().map(t) {
            class_filters_keep_their_members(&store, &model, at)?;
        }
    }
}

/// Checks that each band filter and the `mql` stage filter at `at` keep
/// exactly the contacts whose evaluated card is in it; returns every
/// contact's score at `at`.
fn class_filters_keep_their_members(
    store: &Store,
    model: &Model,
    at: Timestamp,
) -> Result<Vec<ContactScore>, TestCaseError> {
    let all = store.scores(at, &ScoreFilter::default()).unwrap();
    let ids = |filter: &ScoreFilter| -> Vec<String> {
        store
            .scores(at, filter)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    for band in ["hot", "cold", "disqualified"] {
        let filter = ScoreFilter {
            band: Some(band.into()),
            ..ScoreFilter::default()
        };
        let want: Vec<String> = all
            .iter()
            .filter(|s| s.card.band_name(model) == Some(band))
            .map(|s| s.id.clone())
            .collect();
        prop_assert_eq!(ids(&filter), want, "band {} at {:?}", band, at);
    }
    let filter = ScoreFilter {
        stage: Some("mql".into()),
        ..ScoreFilter::default()
    };
    let want: Vec<String> = all
        .iter()
        .filter(|s| s.card.stage_name(model) == Some("mql"))
        .map(|s| s.id.clone())
        .collect();
    prop_assert_eq!(ids(&filter), want, "stage mql at {:?}", at);
    Ok(all)
}

/// A database at `db` made with `model`, holding `contacts` and `events`
/// (as [`write_contacts`] and [`write_events`] take them) imported at
/// minute 100, in batches of 10.
fn imported(
    db: &Path,
    model: &str,
    contacts: &[(usize, usize)],
    events: &[(usize, usize, usize, i64, usize)],
) -> Store {
    let (c, e) = (
        db.with_extension("contacts.csv"),
        db.with_extension("events.csv"),
    );
    write_contacts(&c, contacts);
    write_events(&e, events);
    let mut s = Store::create(db, model, t(0)).unwrap();
    s.import_contacts(&c, &options(t(100), 10), &mut noop())
        .unwrap();
    s.import_events(&e, &options(t(100), 10), &mut noop())
        .unwrap();
    s
}

fn fresh(dir: &Path) -> (Store, PathBuf) {
    let db = dir.join("t.db");
    (Store::create(&db, MODEL, t(0)).unwrap(), db)
}

#[test]
fn importing_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = fresh(dir.path());
    let contacts = dir.path().join("c.csv");
    write_contacts(&contacts, &[(1, 0), (2, 1)]);
    let events = dir.path().join("e.csv");
    write_events(
        &events,
        &[(1, 1, 0, 10, 0), (2, 2, 1, 20, 1), (1, 1, 0, 10, 0)],
    );
    let o = options(t(100), 2);
    let a = store.import_contacts(&contacts, &o, &mut noop()).unwrap();
    assert_eq!((a.stored, a.unchanged), (2, 0));
    let e = store.import_events(&events, &o, &mut noop()).unwrap();
    assert_eq!((e.stored, e.unchanged), (2, 1));
    let before = store.scores(t(100), &ScoreFilter::default()).unwrap();
    let h1 = store.history("c1").unwrap();
    let a = store.import_contacts(&contacts, &o, &mut noop()).unwrap();
    assert_eq!((a.stored, a.unchanged), (0, 2));
    let e = store.import_events(&events, &o, &mut noop()).unwrap();
    assert_eq!((e.stored, e.unchanged), (0, 3));
    let after = store.scores(t(100), &ScoreFilter::default()).unwrap();
    assert_eq!(
        before.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>(),
        after.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>()
    );
    assert_eq!(store.history("c1").unwrap(), h1);
    assert_eq!(store.counts().unwrap(), (2, 2));
}

#[test]
fn unknown_contacts_are_created_and_filled_in_later() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = fresh(dir.path());
    let events = dir.path().join("e.csv");
    write_events(&events, &[(1, 5, 0, 10, 0)]);
    let s = store
        .import_events(&events, &options(t(100), 10), &mut noop())
        .unwrap();
    assert_eq!(s.contacts_created, 1);
    let scores = store.scores(t(100), &ScoreFilter::default()).unwrap();
    assert_eq!(scores[0].id, "c5");
    assert_eq!(scores[0].card.dimensions[0], 0.0);
    let contacts = dir.path().join("c.csv");
    write_contacts(&contacts, &[(5, 0)]);
    store
        .import_contacts(&contacts, &options(t(100), 10), &mut noop())
        .unwrap();
    let scores = store.scores(t(100), &ScoreFilter::default()).unwrap();
    assert_eq!(scores[0].card.dimensions[0], 25.0);
    let causes: Vec<String> = store
        .history("c5")
        .unwrap()
        .into_iter()
        .map(|r| r.cause)
        .collect();
    assert!(causes.contains(&"data".to_string()), "{causes:?}");
}

#[test]
fn bad_rows_go_to_rejects_and_good_rows_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = fresh(dir.path());
    let events = dir.path().join("e.csv");
    std::fs::write(
        &events,
        "id,contact_id,type,timestamp,url\n\
         e1,c1,page_view,2026-05-01T00:00:00Z,/pricing\n\
         e2,c1,page_view,yesterday,/pricing\n\
         e3,c1,page_view\n\
         ,c1,page_view,2026-05-01T00:00:00Z,/\n\
         e5,c1,page_view,2026-05-02T00:00:00Z,/pricing\n",
    )
    .unwrap();
    let s = store
        .import_events(&events, &options(t(3000), 100), &mut noop())
        .unwrap();
    assert_eq!((s.rows, s.stored, s.rejected), (5, 2, 3));
    let rejects = std::fs::read_to_string(s.rejects_path.unwrap()).unwrap();
    assert!(rejects.starts_with("line,field,reason\n"));
    assert!(rejects.contains("3,\"timestamp\","), "{rejects}");
    assert!(
        rejects.contains("4,\"\",\"3 columns where the header has 5\""),
        "{rejects}"
    );
    assert!(
        rejects.contains("5,\"id\",\"missing or empty\""),
        "{rejects}"
    );
    assert_eq!(store.counts().unwrap(), (1, 2));
}

#[test]
fn delete_erases_everything_about_a_contact() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = fresh(dir.path());
    let events = dir.path().join("e.csv");
    write_events(
        &events,
        &[(1, 1, 0, 10, 0), (2, 2, 0, 10, 0), (3, 1, 1, 11, 0)],
    );
    store
        .import_events(&events, &options(t(100), 10), &mut noop())
        .unwrap();
    store.delete_contact("c1").unwrap();
    assert_eq!(store.counts().unwrap(), (1, 1));
    assert!(matches!(
        store.history("c1"),
        Err(StoreError::UnknownContact(_))
    ));
    assert!(matches!(
        store.explain("c1", t(100)),
        Err(StoreError::UnknownContact(_))
    ));
    assert!(matches!(
        store.delete_contact("c1"),
        Err(StoreError::UnknownContact(_))
    ));
    // Forgotten means forgotten: the same events arriving again are new.
    let again = store
        .import_events(&events, &options(t(100), 10), &mut noop())
        .unwrap();
    assert_eq!(
        (again.stored, again.unchanged, again.contacts_created),
        (2, 1, 1)
    );
    assert_eq!(store.counts().unwrap(), (2, 3));
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_new_model_version_rescores_and_old_versions_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = fresh(dir.path());
    let contacts = dir.path().join("c.csv");
    write_contacts(&contacts, &[(1, 0), (2, 1)]);
    store
        .import_contacts(&contacts, &options(t(100), 10), &mut noop())
        .unwrap();
    let stricter = MODEL.replace("min_score = 50", "min_score = 20");
    let dry = store.set_model(&stricter, t(200), true).unwrap();
    assert_eq!(dry.version, None);
    assert_eq!(store.model_version(), 1);
    assert!(dry.moved >= 1, "{dry:?}");
    let change = store.set_model(&stricter, t(200), false).unwrap();
    assert_eq!(change.version, Some(2));
    assert_eq!(store.model_log().unwrap().len(), 2);
    assert_eq!(store.model_text(1).unwrap().as_deref(), Some(MODEL));
    let h = store.history("c1").unwrap();
    let last = h.last().unwrap();
    assert_eq!(
        (last.cause.as_str(), last.to.as_deref()),
        ("model", Some("hot"))
    );
    assert!(
        store
            .set_model("[[dimension]]\nid = 1", t(300), false)
            .is_err()
    );
    assert_eq!(store.model_version(), 2);
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn time_passing_is_recorded_by_tick() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = fresh(dir.path());
    let contacts = dir.path().join("c.csv");
    write_contacts(&contacts, &[(1, 0)]);
    store
        .import_contacts(&contacts, &options(t(0), 10), &mut noop())
        .unwrap();
    let events = dir.path().join("e.csv");
    // A VP with two pricing views and a click: hot at first, cooling with decay.
    write_events(
        &events,
        &[(1, 1, 0, 0, 0), (2, 1, 0, 60, 0), (3, 1, 1, 120, 0)],
    );
    store
        .import_events(&events, &options(t(200), 10), &mut noop())
        .unwrap();
    let hot = store.scores(t(200), &ScoreFilter::default()).unwrap();
    assert_eq!(hot[0].card.band, Some(0), "{:?}", hot[0].card);
    let s = store.tick(t(60 * 24 * 60)).unwrap();
    assert!(s.transitions >= 1, "{s:?}");
    let h = store.history("c1").unwrap();
    let cooled = h
        .iter()
        .find(|r| r.cause == "decay" && r.kind == "band")
        .unwrap();
    assert_eq!(cooled.to.as_deref(), Some("cold"));
    // The recorded time is when the score really crossed the threshold.
    let just_before = Timestamp(cooled.at.0 - 1_000_000_000);
    let before = store.scores(just_before, &ScoreFilter::default()).unwrap();
    let after = store.scores(cooled.at, &ScoreFilter::default()).unwrap();
    assert_eq!(before[0].card.band, Some(0));
    assert_eq!(after[0].card.band, Some(1));
    // Ticking again changes nothing.
    assert_eq!(store.tick(t(60 * 24 * 60)).unwrap().transitions, 0);
}

/// Ticking in turns (as the service does, letting event writes in between)
/// records what one tick records. Fails if a turn ignores its limit or
/// says nothing is left while contacts are still due.
#[test]
fn ticking_in_turns_records_what_one_tick_does() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let stores: Vec<Store> = dirs
        .iter()
        .map(|dir| {
            let dir = dir.path();
            let (mut store, _) = fresh(dir);
            let contacts = dir.join("c.csv");
            write_contacts(&contacts, &[(1, 0), (2, 0), (3, 0), (4, 1)]);
            store
                .import_contacts(&contacts, &options(t(0), 10), &mut noop())
                .unwrap();
            let events = dir.join("e.csv");
            let mut rows = Vec::new();
            for c in 1..=4 {
                rows.push((10 * c, c, 0, 0, 0));
                rows.push((10 * c + 1, c, 0, 60, 0));
                rows.push((10 * c + 2, c, 1, 120, 0));
            }
            write_events(&events, &rows);
            store
                .import_events(&events, &options(t(200), 10), &mut noop())
                .unwrap();
            store
        })
        .collect();
    let [mut whole, mut turns]: [Store; 2] = stores.try_into().ok().unwrap();
    let until = t(60 * 24 * 60);
    let one = whole.tick(until).unwrap();
    assert!(one.contacts >= 3, "{one:?}");
    let mut total = (0, 0);
    let mut rounds = 0;
    loop {
        let (done, more) = turns.tick_some(until, 1).unwrap();
        assert!(done.contacts <= 1, "{done:?}");
        total.0 += done.contacts;
        total.1 += done.transitions;
        rounds += 1;
        if !more {
            break;
        }
        assert!(rounds < 100, "turns never end");
    }
    assert_eq!(total, (one.contacts, one.transitions));
    assert_eq!(turns.tick(until).unwrap().transitions, 0, "nothing left");
    for c in ["c1", "c2", "c3", "c4"] {
        let a: Vec<_> = whole.history(c).unwrap();
        let b: Vec<_> = turns.history(c).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{c}");
    }
    let f = ScoreFilter::default();
    assert_eq!(
        format!("{:?}", whole.scores(until, &f).unwrap()),
        format!("{:?}", turns.scores(until, &f).unwrap())
    );
}

#[test]
fn other_schema_versions_are_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = fresh(dir.path());
    drop(store);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = Store::open(&db).err().unwrap().to_string();
    assert!(err.contains("newer than this leadscore"), "{err}");
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute("CREATE TABLE x(a)", [])
        .unwrap();
    let err = Store::open(&other).err().unwrap().to_string();
    assert!(err.contains("not a leadscore database"), "{err}");
    let err = Store::open(&dir.path().join("missing.db"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no leadscore database"), "{err}");
}

#[test]
fn a_model_change_scores_as_a_database_built_with_that_model() {
    let changed_points = MODEL.replace("points = 30", "points = 45");
    // One rule's condition (its events are matched again, for it alone).
    let changed_matching = MODEL.replace("starts_with = \"/pricing\"", "contains = \"enterprise\"");
    // Two rules' conditions, one of them on an attribute, the other rules'
    // matches on the same event type kept.
    let changed_two = changed_matching.replace("equals = \"engineer\"", "equals = \"VP Sales\"");
    // A rule's event type (every event is matched again).
    let changed_type = MODEL.replace("on = \"email_click\"", "on = \"email_open\"");
    // A condition and points: contacts whose matches stay the same move
    // all the same (they must not be left as they were).
    let changed_both = changed_matching.replace("points = 30", "points = 45");
    // An attribute rule's points, and which contacts a disqualifying
    // attribute rule holds for.
    let changed_attribute_points = MODEL.replace("points = 25", "points = 20");
    let changed_disqualified = MODEL.replace(
        "when = { attribute = \"title\", equals = \"student\" }",
        "when = { attribute = \"title\", equals = \"engineer\" }",
    );
    // Rules added (at the end, in the middle), removed, renamed: the
    // others' matches carry over, renumbered.
    let opens =
        "[[rule]]\nid = \"opens\"\ndimension = \"engagement\"\non = \"email_open\"\npoints = 7\n";
    let added_last = format!("{MODEL}{opens}");
    let added_middle = MODEL.replace(
        "[[rule]]\nid = \"click\"",
        &format!("{opens}[[rule]]\nid = \"click\""),
    );
    let click = "[[rule]]\nid = \"click\"\ndimension = \"engagement\"\non = \"email_click\"\npoints = 12\nlimit = { count = 3 }\n";
    let removed = MODEL.replace(click, "");
    let renamed = MODEL.replace("id = \"click\"", "id = \"clicked\"");
    // A rule reading a property and one reading an attribute no rule read
    // before (numbered after the others).
    let added_property = format!(
        "{MODEL}[[rule]]\nid = \"blog\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = 3\nwhen = {{ any = [ {{ property = \"campaign\", exists = true }}, {{ property = \"url\", contains = \"blog\" }} ] }}\n"
    );
    let added_attribute = format!(
        "{MODEL}[[rule]]\nid = \"anonymous-click\"\ndimension = \"engagement\"\non = \"email_click\"\npoints = 4\nwhen = {{ attribute = \"company\", exists = false }}\n"
    );
    for new_model in [
        changed_points,
        changed_matching,
        changed_two,
        changed_type,
        changed_both,
        changed_attribute_points,
        changed_disqualified,
        added_last,
        added_middle,
        removed,
        renamed,
        added_property,
        added_attribute,
        // The same condition on another property (numbered as `url` was).
        MODEL.replace("property = \"url\"", "property = \"path\""),
    ] {
        // Soon after the data came (nothing due), and 12 days later (decay
        // has moved contacts: `model set` records that first).
        for when in [t(200), t(60 * 24 * 12)] {
            assert_ne!(new_model, MODEL);
            let dir = tempfile::tempdir().unwrap();
            let events = [
                (1, 1, 0, 10, 0),
                (2, 1, 0, 20, 2),
                (3, 2, 0, 30, 2),
                (4, 3, 1, 40, 0),
                (5, 2, 1, 50, 1),
                // email_open: no rule of MODEL reads it; `changed_type`'s does.
                (6, 1, 4, 60, 0),
                (7, 3, 4, 70, 0),
            ];
            let build = |name: &str, model: &str| {
                imported(
                    &dir.path().join(name),
                    model,
                    &[(1, 0), (2, 1), (3, 2)],
                    &events,
                )
            };
            let fresh = build("b.db", &new_model);
            // `model set` works through contacts a chunk at a time: whatever
            // the chunk, the same scores, summary and history.
            let mut summaries = Vec::new();
            let mut histories = Vec::new();
            for chunk in [1, 2, 50_000] {
                let mut changed = build(&format!("a{chunk}.db"), MODEL);
                changed.set_model_chunk(chunk);
                summaries.push(changed.set_model(&new_model, when, false).unwrap());
                for at in [when, t(60 * 24 * 3), t(60 * 24 * 15)] {
                    let a = changed.scores(at, &ScoreFilter::default()).unwrap();
                    let b = fresh.scores(at, &ScoreFilter::default()).unwrap();
                    assert_eq!(
                        a.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>(),
                        b.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>()
                    );
                }
                assert_eq!(changed.check().unwrap(), Vec::<String>::new());
                histories.push(
                    ["c1", "c2", "c3"].map(|id| format!("{:?}", changed.history(id).unwrap())),
                );
            }
            assert_eq!(summaries[0], summaries[1]);
            assert_eq!(summaries[0], summaries[2]);
            assert_eq!(histories[0], histories[2]);
            assert_eq!(histories[1], histories[2]);
            // The summary counts each contact's band and stage at the change's
            // time under the old model (a database kept with it) and the new
            // one; a mover's score changed, from the old model's to the new's.
            let original = build("original.db", MODEL);
            let scores = |store: &Store| -> BTreeMap<String, ScoreCard> {
                let all = store.scores(when, &ScoreFilter::default()).unwrap();
                all.into_iter().map(|s| (s.id, s.card)).collect()
            };
            let (before, after) = (scores(&original), scores(&fresh));
            let (old_model, new_model) = (
                Model::from_toml(MODEL).unwrap(),
                Model::from_toml(&new_model).unwrap(),
            );
            let mut bands: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            let mut stages: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            let name = |n: Option<&str>| n.unwrap_or("none").to_string();
            for card in before.values() {
                bands.entry(name(card.band_name(&old_model))).or_default().0 += 1;
                stages
                    .entry(name(card.stage_name(&old_model)))
                    .or_default()
                    .0 += 1;
            }
            for card in after.values() {
                bands.entry(name(card.band_name(&new_model))).or_default().1 += 1;
                stages
                    .entry(name(card.stage_name(&new_model)))
                    .or_default()
                    .1 += 1;
            }
            assert_eq!(summaries[0].bands, bands);
            assert_eq!(summaries[0].stages, stages);
            for (id, was, is) in &summaries[0].movers {
                assert_ne!(was, is, "{id} did not move");
                assert_eq!((*was, *is), (before[id].score, after[id].score), "{id}");
            }
            let moving = before.iter().filter(|(id, c)| c.score != after[*id].score);
            assert_eq!(summaries[0].movers.len(), moving.count().min(10));
        }
    }
}

#[test]
fn a_schema_1_database_is_migrated_once_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, db) = fresh(dir.path());
    let contacts = dir.path().join("c.csv");
    write_contacts(&contacts, &[(1, 0), (2, 1)]);
    store
        .import_contacts(&contacts, &options(t(100), 2), &mut noop())
        .unwrap();
    let before = store.scores(t(100), &ScoreFilter::default()).unwrap();
    assert_eq!(before.len(), 2);
    drop(store);
    // Make it look like a database written by the first release.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TABLE model_files; DROP TABLE api_keys; DROP TABLE outbox; DROP TABLE webhooks; DROP TABLE segments; ALTER TABLE models DROP COLUMN slots; UPDATE meta SET value = '1' WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.migrated_from(), Some(1));
    let after = store.scores(t(100), &ScoreFilter::default()).unwrap();
    assert_eq!(
        before.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>(),
        after.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>()
    );
    drop(store);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.migrated_from(), None, "migrated once only");
}

/// Three contacts imported at t(100) with MODEL: c1 (a VP) saw /pricing
/// and /pricing/enterprise, c2 (an engineer) /pricing/enterprise, c3 (a
/// student) clicked an email.
fn three_contacts(db: &Path) -> Store {
    let events = [
        (1, 1, 0, 10, 0),
        (2, 1, 0, 20, 2),
        (3, 2, 0, 30, 2),
        (4, 3, 1, 40, 0),
    ];
    imported(db, MODEL, &[(1, 0), (2, 1), (3, 2)], &events)
}

/// The time a contact's stored live state is for.
fn scored_at(db: &Path, id: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT scored_at FROM contacts WHERE ext_id = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

/// When only event conditions change, `model set` leaves alone the
/// contacts whose matches stay the same (their stored state is the new
/// model's too) and rewrites the others.
#[test]
fn a_condition_change_rewrites_only_the_contacts_whose_matches_moved() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let mut store = three_contacts(&db);
    // Pages containing "enterprise" instead of starting with "/pricing":
    // c1 loses a match, c2 keeps its one, c3 has none either way.
    let new_model = MODEL.replace("starts_with = \"/pricing\"", "contains = \"enterprise\"");
    store.set_model(&new_model, t(200), false).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let scored_at = |id: &str| scored_at(&db, id);
    assert_eq!(scored_at("c1"), t(200).0, "c1's matches moved");
    assert_eq!(scored_at("c2"), t(100).0, "c2 was left as it was");
    assert_eq!(scored_at("c3"), t(100).0, "c3 was left as it was");
}

#[test]
fn a_points_change_rewrites_only_the_contacts_that_rule_matched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    // c3 clicked an email; c1 and c2 only saw pages.
    let mut store = three_contacts(&db);
    let new_model = MODEL.replace("points = 12", "points = 15");
    assert_ne!(new_model, MODEL);
    store.set_model(&new_model, t(200), false).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let scored_at = |id: &str| scored_at(&db, id);
    assert_eq!(scored_at("c3"), t(200).0, "the click rule matched c3");
    assert_eq!(scored_at("c1"), t(100).0, "c1 was left as it was");
    assert_eq!(scored_at("c2"), t(100).0, "c2 was left as it was");
    // An attribute rule's points: the contacts it holds for (c1, a VP;
    // c2 is an engineer, c3 a student) are scored again.
    let attribute = new_model.replace("points = 25", "points = 20");
    assert_ne!(attribute, new_model);
    store.set_model(&attribute, t(300), false).unwrap();
    assert_eq!(scored_at("c1"), t(300).0, "the vp rule holds for c1");
    assert_eq!(scored_at("c2"), t(100).0, "c2 was left as it was");
    assert_eq!(scored_at("c3"), t(200).0, "c3 was left as it was");
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

/// A rule added first moves every other rule's place, but not the
/// numbers their matches are stored under: only the contacts the new rule
/// matches are scored again, and an old release's numbering (no stored
/// slots) reads the same.
#[test]
fn a_rule_added_first_rewrites_only_the_contacts_it_matches() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let mut store = three_contacts(&db);
    // c3 clicked an email; c1 and c2 only saw pages.
    let first = MODEL.replacen(
        "[[rule]]",
        "[[rule]]\nid = \"clicks-first\"\ndimension = \"engagement\"\non = \"email_click\"\npoints = 3\n[[rule]]",
        1,
    );
    store.set_model(&first, t(200), false).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let scored_at = |id: &str| scored_at(&db, id);
    assert_eq!(scored_at("c3"), t(200).0, "the new rule matched c3");
    assert_eq!(scored_at("c1"), t(100).0, "c1 was left as it was");
    assert_eq!(scored_at("c2"), t(100).0, "c2 was left as it was");
    // Removed again: the same, and the reopened database reads its slots.
    store.set_model(MODEL, t(300), false).unwrap();
    drop(store);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(scored_at("c3"), t(300).0);
    assert_eq!(scored_at("c1"), t(100).0);
    let slots: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT slots FROM models WHERE version = 3", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(slots, r#"{"rules":[0,1,2,3,4,5],"next":7}"#);
}

fn event(id: &str, contact: &str, minutes: i64) -> leadscore_batch::rows::EventRow {
    leadscore_batch::rows::EventRow {
        id: id.into(),
        contact_id: contact.into(),
        event_type: "page_view".into(),
        at: t(minutes),
        properties: vec![("url".into(), "/pricing".into())],
    }
}

fn title(contact: &str, title: &str) -> Vec<leadscore_batch::rows::ContactRow> {
    vec![leadscore_batch::rows::ContactRow {
        id: contact.into(),
        attributes: vec![("title".into(), title.into())],
    }]
}

/// The event writer remembers contacts and event numbers between calls
/// (`event_cache`); whatever changes them, on its own connection or on
/// another one, must make it look again.
#[test]
fn the_event_writer_never_trusts_what_changed_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, db) = fresh(dir.path());
    let mut b = Store::open(&db).unwrap();
    let consistent = |s: &Store| assert_eq!(s.check().unwrap(), Vec::<String>::new());
    a.upsert_contacts(title("c1", "Engineer"), false, t(0))
        .unwrap();
    assert_eq!(
        a.ingest_events(vec![event("e1", "c1", 1)], t(1)).unwrap(),
        [true]
    );
    // Its attributes change through the same handle: the next event is
    // matched with the new title (no "engineer-visits" points).
    a.upsert_contacts(title("c1", "VP Sales"), false, t(2))
        .unwrap();
    a.ingest_events(vec![event("e2", "c1", 3)], t(3)).unwrap();
    consistent(&a);
    // Another connection stores an event of the same contact: the next
    // event number has moved.
    b.ingest_events(vec![event("e3", "c1", 4)], t(4)).unwrap();
    assert_eq!(
        a.ingest_events(vec![event("e4", "c1", 5)], t(5)).unwrap(),
        [true]
    );
    consistent(&a);
    // Another connection changes its attributes.
    b.upsert_contacts(title("c1", "Engineer"), false, t(6))
        .unwrap();
    a.ingest_events(vec![event("e5", "c1", 7)], t(7)).unwrap();
    consistent(&a);
    // Ticks (credited as harmless) between events keep the store exact.
    a.tick(t(60 * 24)).unwrap();
    a.ingest_events(vec![event("e6", "c1", 60 * 24 + 1)], t(60 * 24 + 1))
        .unwrap();
    consistent(&a);
    // Another connection deletes it: the next event makes a new, bare
    // contact holding only that event.
    b.delete_contact("c1").unwrap();
    a.ingest_events(vec![event("e7", "c1", 60 * 24 + 2)], t(60 * 24 + 2))
        .unwrap();
    consistent(&a);
    assert_eq!(a.counts().unwrap().1, 1);
    assert_eq!(a.attributes("c1").unwrap(), Some(Default::default()));
    // The same through this handle.
    a.delete_contact("c1").unwrap();
    a.ingest_events(vec![event("e8", "c1", 60 * 24 + 3)], t(60 * 24 + 3))
        .unwrap();
    consistent(&a);
    assert_eq!(a.counts().unwrap(), (1, 1));
}

/// The delivery log keeps what is owed or failed, and lets settled
/// deliveries go once they are older than the retention.
#[test]
fn pruning_the_delivery_log_keeps_pending_and_dead_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = fresh(dir.path());
    let (hook, _) = store
        .add_webhook("http://127.0.0.1:9/hook", &["band".into()], None, t(0))
        .unwrap();
    // Five contacts turn hot: five deliveries owed.
    for c in 1..=5 {
        let id = format!("c{c}");
        store
            .upsert_contacts(title(&id, "VP Sales"), false, t(0))
            .unwrap();
        store
            .ingest_events(
                vec![
                    event(&format!("{id}-a"), &id, 1),
                    event(&format!("{id}-b"), &id, 2),
                ],
                t(2),
            )
            .unwrap();
    }
    let owed: Vec<i64> = store
        .deliveries(hook.id, 100)
        .unwrap()
        .iter()
        .map(|d| d.seq)
        .collect();
    assert!(owed.len() >= 5, "{owed:?}");
    let day = 86_400 * 1_000_000_000_i64;
    // Delivered long ago, delivered recently, skipped long ago, dead,
    // still pending.
    store.delivered(owed[0], day).unwrap();
    store.delivered(owed[1], 20 * day).unwrap();
    store.delivery_skipped(owed[2], day).unwrap();
    while !store.delivery_failed(owed[3], "HTTP 500", 0).unwrap() {}
    assert_eq!(store.prune_deliveries(10 * day).unwrap(), 2);
    let left: Vec<(i64, String)> = store
        .deliveries(hook.id, 100)
        .unwrap()
        .into_iter()
        .map(|d| (d.seq, d.state))
        .collect();
    assert!(!left.iter().any(|(s, _)| *s == owed[0] || *s == owed[2]));
    assert!(left.contains(&(owed[1], "delivered".into())));
    assert!(left.contains(&(owed[3], "dead".into())));
    assert!(left.contains(&(owed[4], "pending".into())));
    assert_eq!(store.pending_deliveries().unwrap(), owed.len() as i64 - 4);
    // Nothing more to prune at the same retention.
    assert_eq!(store.prune_deliveries(10 * day).unwrap(), 0);
}

/// The outbox trigger of schema 4 and 5, as those releases created it.
const V5_TRIGGER: &str = "
CREATE TRIGGER transitions_to_outbox AFTER INSERT ON transitions BEGIN
    INSERT INTO outbox(webhook, contact, body)
    SELECT w.id, c.ext_id, json_object(
        'type', CASE WHEN NEW.to_value = 'disqualified' THEN 'disqualified' ELSE NEW.kind || '_changed' END,
        'contact', c.ext_id, 'kind', NEW.kind, 'from', NEW.from_value, 'to', NEW.to_value,
        'at', NEW.at, 'cause', NEW.cause, 'detail', NEW.detail, 'model_version', NEW.model_version,
        'transition', NEW.seq)
    FROM webhooks w JOIN contacts c ON c.id = NEW.contact
    WHERE w.removed_at IS NULL
      AND (instr(w.kinds, ' ' || NEW.kind || ' ') > 0
           OR (NEW.to_value = 'disqualified' AND instr(w.kinds, ' disqualified ') > 0));
END;";

/// Deliveries owed by the transitions of the same story, told to a
/// database with one subscription to every kind (bodies and contacts, in
/// outbox order).
fn deliveries_owed(store: &mut Store) -> Vec<(String, serde_json::Value)> {
    let (hook, _) = store
        .add_webhook(
            "http://127.0.0.1:9/hook",
            &["band".into(), "stage".into(), "disqualified".into()],
            None,
            t(0),
        )
        .unwrap();
    for c in 1..=3 {
        let id = format!("c{c}");
        store
            .upsert_contacts(title(&id, "VP Sales"), false, t(0))
            .unwrap();
        let events = (0..c)
            .map(|i| event(&format!("{id}-{i}"), &id, i as i64 + 1))
            .collect();
        store.ingest_events(events, t(5)).unwrap();
    }
    store
        .deliveries(hook.id, 1000)
        .unwrap()
        .into_iter()
        .map(|d| (d.contact, serde_json::from_str(&d.body).unwrap()))
        .collect()
}

/// Schema 6 writes deliveries from code instead of a trigger: a schema 5
/// database loses the trigger when it is migrated (or every delivery would
/// be owed twice), and the code writes the bodies the trigger wrote.
#[test]
fn a_schema_5_database_owes_each_delivery_once_after_migration() {
    let dir = tempfile::tempdir().unwrap();
    let with_trigger = |name: &str, version: &str| {
        let db = dir.path().join(name);
        drop(Store::create(&db, MODEL, t(0)).unwrap());
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(V5_TRIGGER).unwrap();
        conn.execute_batch("ALTER TABLE models DROP COLUMN slots")
            .unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [version],
        )
        .unwrap();
        db
    };
    // As a schema 5 release left it: migrating drops the trigger.
    let mut store = Store::open(&with_trigger("v5.db", "5")).unwrap();
    assert_eq!(store.migrated_from(), Some(5));
    let owed = deliveries_owed(&mut store);
    let transitions: usize = (1..=3)
        .map(|c| store.history(&format!("c{c}")).unwrap().len())
        .sum();
    assert!(transitions >= 3, "the story must move contacts: {owed:?}");
    assert_eq!(owed.len(), transitions, "one delivery per transition");
    // With the trigger left in place (no migration runs at schema 6), the
    // trigger and the code each write one delivery per transition: the
    // same body, the trigger's first.
    let mut both = Store::open(&with_trigger("both.db", "6")).unwrap();
    let twice = deliveries_owed(&mut both);
    assert_eq!(twice.len(), 2 * transitions);
    for pair in twice.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    let bodies: Vec<&serde_json::Value> = twice.iter().step_by(2).map(|(_, b)| b).collect();
    for (c, body) in &owed {
        assert_eq!(body["contact"], c.as_str());
        assert!(
            body["type"].as_str().unwrap().ends_with("_changed"),
            "{body}"
        );
    }
    // The same story gives the same bodies (transition numbers included).
    assert_eq!(owed.iter().map(|(_, b)| b).collect::<Vec<_>>(), bodies);
}

/// A service keeps its database open while `leadscore model set` runs in
/// another process: the service's next write or read uses the new model.
#[test]
fn a_model_set_by_another_process_is_used_from_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut service, db) = fresh(dir.path());
    let mut cli = Store::open(&db).unwrap();
    // As a freshly opened handle sees it: every live state is what the
    // current model gives.
    let consistent = || {
        assert_eq!(
            Store::open(&db).unwrap().check().unwrap(),
            Vec::<String>::new()
        )
    };
    service
        .upsert_contacts(title("c1", "VP Sales"), false, t(0))
        .unwrap();
    service
        .ingest_events(vec![event("e1", "c1", 1)], t(1))
        .unwrap();
    let cheaper = MODEL.replace("points = 30", "points = 5");
    cli.set_model(&cheaper, t(2), false).unwrap();
    service
        .ingest_events(vec![event("e2", "c1", 3)], t(3))
        .unwrap();
    assert_eq!(service.model_version(), 2);
    consistent();
    cli.set_model(MODEL, t(4), false).unwrap();
    service
        .upsert_contacts(title("c2", "Engineer"), false, t(5))
        .unwrap();
    assert_eq!(service.model_version(), 3);
    consistent();
    cli.set_model(&cheaper, t(6), false).unwrap();
    service.tick(t(60 * 24 * 3)).unwrap();
    assert_eq!(service.model_version(), 4);
    consistent();
    cli.set_model(MODEL, t(7), false).unwrap();
    service.visit(&["anon-1".to_string()], t(8)).unwrap();
    assert!(service.merge_contacts("anon-1", "c1", t(8)).unwrap());
    assert_eq!(service.model_version(), 5);
    consistent();
    cli.set_model(&cheaper, t(9), false).unwrap();
    let change = service.set_model(MODEL, t(10), false).unwrap();
    assert_eq!(change.version, Some(7));
    consistent();
    // Reads through a handle that was told to look again.
    cli.set_model(&cheaper, t(11), false).unwrap();
    assert!(service.sync_model().unwrap());
    let mine = service.contact_score("c1", t(12)).unwrap().card;
    assert_eq!(
        mine,
        Store::open(&db)
            .unwrap()
            .contact_score("c1", t(12))
            .unwrap()
            .card
    );
}

/// The service reads on handles of their own (`StoreReader`): they see
/// every committed write, and each read is one consistent snapshot under
/// the model current in it. (That they cannot write is a compile-time
/// property: see the `compile_fail` examples on `StoreReader`.)
#[test]
fn a_reading_handle_sees_commits_in_snapshots_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, db) = fresh(dir.path());
    writer
        .upsert_contacts(title("c1", "VP Sales"), false, t(0))
        .unwrap();
    writer
        .ingest_events(vec![event("e1", "c1", 1)], t(1))
        .unwrap();
    let mut reader = StoreReader::open(&db).unwrap();
    let read = |r: &mut StoreReader| r.snapshot(|s| s.contact_score("c1", t(10))).unwrap().card;
    let first = read(&mut reader);
    assert_eq!(first, writer.contact_score("c1", t(10)).unwrap().card);
    // A write committed while a snapshot is open is not seen in it...
    reader
        .snapshot(|s| -> Result<(), StoreError> {
            let before = s.contact_score("c1", t(10))?.card;
            writer
                .ingest_events(vec![event("e2", "c1", 2)], t(2))
                .unwrap();
            assert_eq!(s.contact_score("c1", t(10))?.card, before);
            Ok(())
        })
        .unwrap();
    // ...and is in the next one.
    let second = read(&mut reader);
    assert!(second.score > first.score, "{second:?} after {first:?}");
    assert_eq!(second, writer.contact_score("c1", t(10)).unwrap().card);
    // A model set through another handle is the reader's next model.
    let cheaper = MODEL.replace("points = 30", "points = 5");
    writer.set_model(&cheaper, t(3), false).unwrap();
    let third = read(&mut reader);
    let version = reader.snapshot(|s| Ok::<_, StoreError>(s.model_version()));
    assert_eq!(version.unwrap(), 2);
    assert_eq!(third, writer.contact_score("c1", t(10)).unwrap().card);
    assert_ne!(third, second);
    // An error inside a snapshot leaves the handle usable.
    let missing = reader.snapshot(|s| s.contact_score("nobody", t(10)));
    assert!(matches!(missing, Err(StoreError::UnknownContact(_))));
    assert_eq!(read(&mut reader), third);
}

#[test]
fn a_reading_handle_does_not_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = fresh(dir.path());
    drop(store);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "DROP TABLE segments; ALTER TABLE models DROP COLUMN slots;
             UPDATE meta SET value = '4' WHERE key = 'schema_version'",
        )
        .unwrap();
    let err = StoreReader::open(&db).err().unwrap().to_string();
    assert!(err.contains("must be migrated"), "{err}");
    Store::open(&db).unwrap();
    StoreReader::open(&db).unwrap();
}

/// A model set on a database nobody ticked first records what time did
/// under the old model (decay, at its times), then the model's change: the
/// same history as `tick` followed by `model set`, whatever the chunk size.
#[test]
fn a_model_set_records_the_decay_that_was_due_first() {
    let dir = tempfile::tempdir().unwrap();
    let later = t(60 * 24 * 40);
    let cheaper = MODEL.replace("points = 30", "points = 20");
    let histories = |ticked: bool, chunk: usize| {
        let db = dir.path().join(format!("{ticked}-{chunk}.db"));
        let mut s = Store::create(&db, MODEL, t(0)).unwrap();
        s.set_model_chunk(chunk);
        for c in 0..5 {
            let id = format!("c{c}");
            s.upsert_contacts(title(&id, ["VP Sales", "Engineer"][c % 2]), false, t(0))
                .unwrap();
            let events = (0..=c)
                .map(|i| event(&format!("e{c}-{i}"), &id, i as i64 * 60))
                .collect();
            s.ingest_events(events, t(c as i64 * 60)).unwrap();
        }
        if ticked {
            s.tick(later).unwrap();
        }
        s.set_model(&cheaper, later, false).unwrap();
        assert_eq!(s.check().unwrap(), Vec::<String>::new());
        (0..5)
            .map(|c| s.history(&format!("c{c}")).unwrap())
            .collect::<Vec<_>>()
    };
    let expected = histories(true, 50_000);
    let decays = expected
        .iter()
        .flatten()
        .filter(|r| r.cause == "decay")
        .count();
    assert!(decays >= 3, "the data must cool down: {expected:?}");
    for chunk in [1, 2, 50_000] {
        assert_eq!(histories(false, chunk), expected, "chunk of {chunk}");
    }
}

/// Events are written in contact order (the B-trees' key order), but a
/// repeated id keeps the event that came first, whatever the contacts;
/// the answers follow the order the events were given in.
#[test]
fn within_a_batch_the_first_event_with_an_id_stays_whatever_its_contact() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, db) = fresh(dir.path());
    // c1 is stored first: its events come first in key order.
    store
        .upsert_contacts(title("c1", "VP Sales"), false, t(1))
        .unwrap();
    store
        .upsert_contacts(title("c2", "VP Sales"), false, t(1))
        .unwrap();
    let stored = store
        .ingest_events(
            vec![
                event("a", "c2", 2),
                event("shared", "c2", 3),
                event("b", "c1", 4),
                event("shared", "c1", 5),
                event("a", "c2", 6),
            ],
            t(10),
        )
        .unwrap();
    assert_eq!(stored, vec![true, true, true, false, false]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let owner: String = conn
        .query_row(
            "SELECT c.ext_id FROM events e JOIN contacts c ON c.id = e.contact WHERE e.id = 'shared'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(owner, "c2");
    let ts: i64 = conn
        .query_row("SELECT ts FROM events WHERE id = 'a'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ts, t(2).0);
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

/// Edits a model author makes (`model set` pairs rules by id and redoes
/// only what each needs): (what to find, what to put instead).
const MODEL_EDITS: [(&str, &str); 14] = [
    // Two rules swap places (first, so that the edits after it still find
    // their text): sums are added in rule order, so contacts either rule
    // touches are scored again.
    (
        "[[rule]]\nid = \"pricing\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = 30\nwhen = { property = \"url\", starts_with = \"/pricing\" }\nlimit = { count = 2, per_days = 3 }\n[[rule]]\nid = \"engineer-visits\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = -4\nwhen = { attribute = \"title\", equals = \"engineer\" }\n",
        "[[rule]]\nid = \"engineer-visits\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = -4\nwhen = { attribute = \"title\", equals = \"engineer\" }\n[[rule]]\nid = \"pricing\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = 30\nwhen = { property = \"url\", starts_with = \"/pricing\" }\nlimit = { count = 2, per_days = 3 }\n",
    ),
    ("points = 30", "points = 45"),
    ("starts_with = \"/pricing\"", "contains = \"enterprise\""),
    ("on = \"email_click\"", "on = \"email_open\""),
    (
        "[[rule]]\nid = \"click\"\ndimension = \"engagement\"\non = \"email_click\"\npoints = 12\nlimit = { count = 3 }\n",
        "",
    ),
    ("id = \"click\"", "id = \"clicked\""),
    (
        "[[rule]]\nid = \"unsubscribed\"",
        "[[rule]]\nid = \"opens\"\ndimension = \"engagement\"\non = \"email_open\"\npoints = 7\n[[rule]]\nid = \"unsubscribed\"",
    ),
    (
        "[[rule]]\nid = \"vp\"",
        "[[rule]]\nid = \"campaign\"\ndimension = \"engagement\"\non = \"page_view\"\npoints = 2\nwhen = { any = [ { property = \"campaign\", exists = true }, { property = \"url\", equals = \"/blog\" } ] }\n[[rule]]\nid = \"vp\"",
    ),
    ("points = 25", "points = 20"),
    (
        "when = { attribute = \"title\", equals = \"student\" }",
        "when = { attribute = \"title\", equals = \"engineer\" }",
    ),
    ("min_score = 50", "min_score = 40"),
    ("equals = \"engineer\" }", "equals = \"vp sales\" }"),
    // Engagement's decay and window: only its rules' contacts move.
    ("half_life_days = 9.5", "half_life_days = 4"),
    ("window_days = 30", "window_days = 11"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Whatever the edits to the model, the data and the time of the
    /// change, a database after `model set` scores every contact as one
    /// built with the new model from the start, at every time after.
    #[test]
    fn any_model_edit_scores_as_a_database_built_with_the_new_model(
        edits in proptest::sample::subsequence((0..MODEL_EDITS.len()).collect::<Vec<_>>(), 1..5),
        contacts in proptest::collection::vec((1usize..5, 0usize..TITLES.len()), 1..5),
        events in proptest::collection::vec(
            (0usize..30, 1usize..5, 0usize..TYPES.len(), 0i64..60 * 24 * 20, 0usize..URLS.len()),
            0..25,
        ),
        later in proptest::bool::ANY,
    ) {
        let mut new_model = MODEL.to_string();
        for e in &edits {
            let (from, to) = MODEL_EDITS[*e];
            new_model = new_model.replacen(from, to, 1);
        }
        prop_assume!(new_model != MODEL);
        let dir = tempfile::tempdir().unwrap();
        let when = if later { t(60 * 24 * 12) } else { t(200) };
        let fresh = imported(&dir.path().join("b.db"), &new_model, &contacts, &events);
        let mut changed = imported(&dir.path().join("a.db"), MODEL, &contacts, &events);
        changed.set_model(&new_model, when, false).unwrap();
        // Unfiltered lists score every contact from its matches; band and
        // stage filters trust each contact's stored live state between its
        // scoring and its next check, so they also catch a contact left
        // alone whose stored state is not the new model's.
        let filters = [
            ScoreFilter::default(),
            ScoreFilter { band: Some("hot".into()), ..ScoreFilter::default() },
            ScoreFilter { band: Some("cold".into()), ..ScoreFilter::default() },
            ScoreFilter { stage: Some("mql".into()), ..ScoreFilter::default() },
        ];
        for at in [when, t(60 * 24 * 15), t(60 * 24 * 40)] {
            for filter in &filters {
                let a = changed.scores(at, filter).unwrap();
                let b = fresh.scores(at, filter).unwrap();
                prop_assert_eq!(
                    a.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>(),
                    b.iter().map(|s| (&s.id, &s.card)).collect::<Vec<_>>(),
                    "edits {:?} at {:?}, band {:?} stage {:?}", edits, at, filter.band, filter.stage
                );
            }
        }
        prop_assert_eq!(changed.check().unwrap(), Vec::<String>::new());
    }
}

#[test]
fn each_model_edit_changes_the_model_and_keeps_it_valid() {
    for (from, to) in MODEL_EDITS {
        let edited = MODEL.replacen(from, to, 1);
        assert_ne!(edited, MODEL, "{from:?} is not in the model");
        Model::from_toml(&edited).unwrap();
    }
}

/// Events a service acknowledged into the inbox but had not stored when it
/// stopped are stored by the next open, once, and the database then
/// remembers the last group it holds.
#[test]
fn opening_stores_what_the_inbox_holds_once() {
    use leadscore_store::{Inbox, inbox_path as path_for};
    let dir = tempfile::tempdir().unwrap();
    let (mut store, db) = fresh(dir.path());
    store
        .ingest_events(vec![event("e1", "c1", 1)], t(1))
        .unwrap();
    let before = store.contact_score("c1", t(3)).unwrap().card.score;
    drop(store);
    {
        let (mut inbox, held) = Inbox::open(&db, 0).unwrap().unwrap();
        assert!(held.is_empty());
        // A repeat of a stored event, and two new ones.
        inbox
            .append(t(2), &[event("e1", "c1", 1), event("e2", "c1", 2)])
            .unwrap();
        inbox.append(t(3), &[event("e3", "c2", 3)]).unwrap();
        // While a process owns the inbox, opening leaves it alone.
        let other = Store::open(&db).unwrap();
        assert_eq!(other.counts().unwrap(), (1, 1));
        assert_eq!(other.inbox_applied().unwrap(), 0);
    }
    let store = Store::open(&db).unwrap();
    assert_eq!(store.counts().unwrap(), (2, 3));
    assert_eq!(store.inbox_applied().unwrap(), 2);
    assert_eq!(std::fs::metadata(path_for(&db)).unwrap().len(), 0);
    assert_ne!(store.contact_score("c1", t(3)).unwrap().card.score, before);
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let after = store.contact_score("c1", t(3)).unwrap().card.score;
    drop(store);
    // Opened again: nothing stored twice; new groups number after 2.
    let store = Store::open(&db).unwrap();
    assert_eq!(store.counts().unwrap(), (2, 3));
    assert_eq!(store.contact_score("c1", t(3)).unwrap().card.score, after);
    drop(store);
    let (mut inbox, _) = Inbox::open(&db, 2).unwrap().unwrap();
    assert_eq!(inbox.append(t(4), &[]).unwrap(), 3);
}

/// Conformance case 101 as a database written before schema 8 (by the
/// build whose stored event keys were `DefaultHasher` values), with the
/// case's model, contacts and events imported; and the case's directory.
fn schema_7_database(dir: &Path) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let db = dir.join("old.db");
    std::fs::copy(root.join("tests/fixtures/schema7-case-101.db"), &db).unwrap();
    (db, root.join("../../tests/conformance/case-101"))
}

/// Opens a migrated case-101 database and checks it: every stored match
/// equals a re-match of its events, and the scores are the batch
/// scorer's over the case's files.
fn assert_migrated_case_101(db: &Path, case: &Path) {
    let store = Store::open(db).unwrap();
    assert_eq!(store.migrated_from(), Some(7));
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let as_of = std::fs::read_to_string(case.join("as_of.txt")).unwrap();
    let as_of = Timestamp::parse(as_of.trim()).unwrap();
    let model =
        Model::from_toml(&std::fs::read_to_string(case.join("model.toml")).unwrap()).unwrap();
    let table = ContactTable::load(&[case.join("contacts.csv")], &model.vocabulary).unwrap();
    let batch = score_files(&model, &table, &[case.join("events.csv")], as_of).unwrap();
    let want: BTreeMap<String, ScoreCard> = (0..table.len())
        .map(|i| (table.id(i).to_string(), batch.cards[i].clone()))
        .collect();
    let got: BTreeMap<String, ScoreCard> = store
        .scores(as_of, &ScoreFilter::default())
        .unwrap()
        .into_iter()
        .filter(|s| want.contains_key(&s.id))
        .map(|s| (s.id, s.card))
        .collect();
    assert_eq!(got, want);
    drop(store);
    let store = Store::open(db).unwrap();
    assert_eq!(store.migrated_from(), None, "migrated once only");
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

/// Schema 8 stores event keys as XXH3 values: a database of schema 7
/// re-keys its stored matches when opened (without it, `check` finds
/// every contact with matches wrong).
#[test]
fn a_schema_7_database_is_rekeyed_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (db, case) = schema_7_database(dir.path());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let with_matches: i64 = conn
        .query_row(
            "SELECT count(*) FROM contacts WHERE length(hits) > 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(with_matches > 50, "{with_matches}");
    drop(conn);
    assert_migrated_case_101(&db, &case);
}

/// Stored keys that name none of a contact's events (a file written by a
/// build whose hasher differed) are found again from the events.
#[test]
fn a_schema_7_database_with_unknown_keys_is_rematched() {
    let dir = tempfile::tempdir().unwrap();
    let (db, case) = schema_7_database(dir.path());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT id, hits FROM contacts")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (id, mut hits) in rows {
        for record in hits.chunks_exact_mut(20) {
            record[12..20].copy_from_slice(&7u64.to_le_bytes());
        }
        conn.execute(
            "UPDATE contacts SET hits = ?1 WHERE id = ?2",
            rusqlite::params![hits, id],
        )
        .unwrap();
    }
    drop(conn);
    assert_migrated_case_101(&db, &case);
}

/// A text search finds contacts by id or by any attribute's value,
/// ignoring case, and counts only them; attribute names do not match.
#[test]
fn a_text_search_matches_ids_and_attribute_values() {
    use leadscore_store::TextSearch;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = fresh(dir.path());
    for (id, job) in [
        ("acme-1", "Engineer"),
        ("c2", "VP Sales"),
        ("c3", "Head of \"Quoted\" Things"),
        ("c4", "Étudiant"),
    ] {
        store.upsert_contacts(title(id, job), false, t(0)).unwrap();
    }
    let found = |text: &str| {
        let filter = ScoreFilter {
            text: TextSearch::new(text),
            ..ScoreFilter::default()
        };
        let ranked = store
            .ranked(t(1), &filter, 10, |a, b| a.score.id.cmp(&b.score.id))
            .unwrap();
        assert_eq!(ranked.total, ranked.items.len());
        ranked.items.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    assert_eq!(found("ACME"), ["acme-1"]);
    assert_eq!(found("vp sa"), ["c2"]);
    assert_eq!(found("\"quoted\""), ["c3"]);
    assert_eq!(found("étud"), ["c4"]);
    assert!(
        found("title").is_empty(),
        "attribute names are not searched"
    );
    assert_eq!(found("  ").len(), 4, "empty text: no search");
}

/// `identify` joins only anonymous visitors: a contact first seen through
/// an anonymous tracking call ([`Store::visit`]) and touched by no other
/// way in since. A known contact is never merged away.
#[test]
fn only_anonymous_visitors_are_joined_into_a_contact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let events = [(1, 1, 0, 100, 0), (2, 2, 0, 100, 0), (3, 3, 1, 100, 0)];
    let mut s = imported(&db, MODEL, &[(1, 0), (2, 1)], &events);
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // c1 is known (imported): a tracking call naming it does not make it
    // a visitor, and it cannot be merged away.
    assert_eq!(
        s.visit(&ids(&["c1", "v1", "v2", "v3", "v1"]), t(200))
            .unwrap(),
        ids(&["v1", "v2", "v3"])
    );
    assert!(!s.is_visitor("c1").unwrap());
    assert!(!s.merge_contacts("c1", "c2", t(201)).unwrap());
    assert!(s.contact_score("c1", t(201)).is_ok(), "c1 is still there");
    // c3 was created by an imported event: known too.
    assert!(!s.merge_contacts("c3", "c2", t(201)).unwrap());
    // A visitor is joined, and is gone.
    assert!(s.is_visitor("v1").unwrap());
    assert!(s.merge_contacts("v1", "c2", t(202)).unwrap());
    assert!(s.contact_score("v1", t(202)).is_err());
    // Contact data or an imported event make a visitor known.
    s.upsert_contacts(title("v2", "VP Sales"), false, t(203))
        .unwrap();
    assert!(!s.is_visitor("v2").unwrap());
    assert!(!s.merge_contacts("v2", "c2", t(204)).unwrap());
    let e = dir.path().join("more.csv");
    write_events(&e, &[(9, 3, 0, 100, 0)]);
    let file = std::fs::read_to_string(&e).unwrap().replace(",c3,", ",v3,");
    std::fs::write(&e, file).unwrap();
    s.import_events(&e, &options(t(205), 10), &mut noop())
        .unwrap();
    assert!(!s.is_visitor("v3").unwrap());
    assert!(!s.merge_contacts("v3", "c2", t(206)).unwrap());
    assert_eq!(s.visitor_ids().unwrap(), Vec::<String>::new());
    assert_eq!(s.check().unwrap(), Vec::<String>::new());
}
