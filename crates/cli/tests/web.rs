//! The web app in a real browser: Debian's chromium, driven through
//! chromedriver (WebDriver), against `leadscore serve` on generated data.
//! Signs in, filters and sorts leads, opens a lead and reads its chart and
//! breakdown, saves a segment, sees a new hot lead appear after events are
//! posted to the API, checks that a contact's data stays text, that a read
//! key's session cannot change anything, that a model's predictive
//! dimension shows its likelihood and factors, and that axe-core finds no
//! serious or critical accessibility violation on any page. A screenshot
//! of each page goes to `target/screenshots/` (or `$LEADSCORE_SCREENSHOTS`;
//! `docs/screenshots/` holds the current ones).
//!
//! chromium and chromedriver must be installed (`./test.sh` installs
//! them): without them this test fails, naming what is missing.

mod common;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{leadscore, stderr};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const NOW: &str = "2026-06-30T00:00:00Z";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver, in a process group of its own with the browser it
/// starts: dropping it ends them all, even when the test failed before
/// closing the session.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str], db: &Path) -> String {
    let mut all = vec!["--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(&all)
        .env("LEADSCORE_NOW", NOW)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A database of 300 generated leads, one whose company is a script tag,
/// and an admin, a write and a read key.
fn database(dir: &Path) -> (PathBuf, [String; 3]) {
    let out = leadscore([
        "generate",
        "--contacts",
        "300",
        "--events",
        "6000",
        "--seed",
        "5",
        "--outcomes",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = dir.join("web.db");
    let xss = dir.join("xss.csv");
    std::fs::write(
        &xss,
        "id,company,job_title\nxss-lead,<script>alert(1)</script>,\"<img src=x onerror=alert(2)>\"\n",
    )
    .unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/starter-model.toml");
    run(&["init", "--model", model.to_str().unwrap()], &db);
    run(
        &[
            "import",
            "contacts",
            dir.join("contacts.csv").to_str().unwrap(),
        ],
        &db,
    );
    run(&["import", "contacts", xss.to_str().unwrap()], &db);
    run(
        &["import", "events", dir.join("events.csv").to_str().unwrap()],
        &db,
    );
    let key = |scope: &str| {
        run(&["keys", "create", "--scope", scope, "--name", scope], &db)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    };
    let keys = [key("admin"), key("write"), key("read")];
    (db, keys)
}

fn serve(db: &Path) -> (Killed, String) {
    let (child, addr) = common::spawn_serve(db, NOW);
    (Killed(child), format!("http://{addr}"))
}

/// chromedriver on a free port, and a headless chromium session.
async fn browser(profile: &Path) -> (Driver, Client) {
    browser_with(profile, json!({})).await
}

/// [`browser`] with these chromium preferences.
async fn browser_with(profile: &Path, prefs: Value) -> (Driver, Client) {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install Debian's chromium and chromium-driver (./test.sh does)"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": prefs,
        }),
    );
    let started = Instant::now();
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start a chromium session: {e}"),
        }
    };
    (driver, client)
}

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("LEADSCORE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Runs axe-core in the page: no serious or critical violation.
async fn accessible(c: &Client, page: &str) {
    let axe = include_str!("fixtures/axe-core/axe.min.js");
    c.execute(axe, vec![]).await.unwrap();
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
                .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }))))
                .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e) }]));",
            vec![],
        )
        .await
        .unwrap();
    let bad: Vec<&Value> = result
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(bad.is_empty(), "{page}: axe-core: {bad:?}");
}

/// Clicks the element `css` finds.
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Clicks the link with this text.
async fn click_link(c: &Client, text: &str) {
    c.find(Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("link {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Types into the field with this id.
async fn type_into(c: &Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

async fn sign_in(c: &Client, base: &str, key: &str) {
    c.goto(&format!("{base}/leads")).await.unwrap();
    assert!(c.current_url().await.unwrap().path() == "/login");
    type_into(c, "key", key).await;
    click(c, "form.signin button").await;
    wait_for_path(c, "/leads").await;
}

/// Waits (up to 10 s) for the browser to be at `path` after a click.
async fn wait_for_path(c: &Client, path: &str) {
    wait_for_url(c, path, |p, _| p == path).await;
}

/// Waits (up to 10 s) for an element to be on the page (after a form
/// whose answer keeps the path).
async fn wait_for_element(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
}

/// Waits (up to 10 s) for the browser's query to contain `part`.
async fn wait_for_query(c: &Client, part: &str) {
    wait_for_url(c, part, |_, q| q.is_some_and(|q| q.contains(part))).await;
}

async fn wait_for_url(c: &Client, path: &str, arrived: impl Fn(&str, Option<&str>) -> bool) {
    let started = Instant::now();
    loop {
        let url = c.current_url().await.unwrap();
        if arrived(url.path(), url.query()) {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let body = text(c, "body").await;
            panic!(
                "not at {path} but {}: {body}",
                c.current_url().await.unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request from the page's own context (same origin, its cookie), with
/// an optional API key; returns the status.
async fn fetch(c: &Client, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> u64 {
    let r = c
        .execute_async(
            "const [method, path, key, body, done] = arguments;
             const headers = {};
             if (key) headers['Authorization'] = 'Bearer ' + key;
             if (body && body.startsWith('csrf=')) headers['Content-Type'] = 'application/x-www-form-urlencoded';
             else if (body) headers['Content-Type'] = 'application/json';
             fetch(path, { method, headers, body: body || undefined, redirect: 'manual' })
               .then(r => done(r.status)).catch(e => done(-1));",
            vec![json!(method), json!(path), json!(key), json!(body)],
        )
        .await
        .unwrap();
    r.as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (db, [admin, write, read]) = database(dir.path());
    let (_server, base) = serve(&db);
    let (_driver, c) = browser(&dir.path().join("profile")).await;

    // Signing in: a page asks for the key, then shows the ranked leads.
    c.goto(&format!("{base}/login")).await.unwrap();
    shot(&c, "sign-in").await;
    accessible(&c, "sign-in").await;
    sign_in(&c, &base, &admin).await;
    let scores: Vec<f64> = texts(&c, "table.leads tbody td.num")
        .await
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(scores.len(), 50, "a page of 50 leads");
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(
        c.find_all(Locator::Css("table.leads svg.spark"))
            .await
            .unwrap()
            .len(),
        50
    );
    shot(&c, "leads").await;
    accessible(&c, "leads").await;
    // From the keyboard: the first Tab reaches the skip link, which takes
    // the focus to the page's content.
    let skip = c.find(Locator::Css("a.skip")).await.unwrap();
    c.execute("document.activeElement.blur();", vec![])
        .await
        .unwrap();
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(&Key::Tab)
        .await
        .unwrap();
    let active = c.active_element().await.unwrap();
    assert_eq!(active.text().await.unwrap(), "Skip to content");
    skip.send_keys(&Key::Enter).await.unwrap();
    let focused = c.active_element().await.unwrap().attr("id").await.unwrap();
    assert_eq!(focused.as_deref(), Some("main"));

    // Filter by band, sort by id.
    click(&c, "#band option[value=hot]").await;
    click(&c, "#sort option[value=id]").await;
    click(&c, "form.filters button").await;
    wait_for_query(&c, "band=hot").await;
    let bands = texts(&c, "table.leads tbody .band").await;
    assert!(
        !bands.is_empty() && bands.iter().all(|b| b == "hot"),
        "{bands:?}"
    );
    let ids = texts(&c, "table.leads tbody th a").await;
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    let count = text(&c, "#count").await;
    assert!(
        count.starts_with(&format!("{} leads", ids.len())),
        "{count}"
    );

    // Save the list as a segment; the list is then that segment.
    type_into(&c, "segment-name", "hot-leads").await;
    click(&c, "form.save-segment button").await;
    wait_for_query(&c, "segment=hot-leads").await;
    assert_eq!(
        c.current_url().await.unwrap().query(),
        Some("segment=hot-leads")
    );
    assert_eq!(
        texts(&c, "table.leads tbody th a").await.len(),
        ids.len().min(50)
    );

    // A lead: its chart (line, band thresholds, event marks), why it has
    // its score, its events and history.
    let first = ids[0].clone();
    click_link(&c, &first).await;
    wait_for_path(&c, &format!("/leads/{first}")).await;
    assert_eq!(text(&c, "h1").await, format!("Lead {first}"));
    assert_eq!(
        c.find_all(Locator::Css("figure.chart polyline.score-line"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        c.find_all(Locator::Css("figure.chart line.threshold"))
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        !c.find_all(Locator::Css("figure.chart circle.event-mark"))
            .await
            .unwrap()
            .is_empty()
    );
    let caption = text(&c, "figure.chart figcaption").await;
    assert!(caption.contains("hot at 65"), "{caption}");
    let dims = texts(&c, "table.dimensions tbody th").await;
    assert_eq!(dims, ["fit", "engagement"]);
    assert!(
        !c.find_all(Locator::Css("details.rule"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !c.find_all(Locator::Css("ol.timeline li"))
            .await
            .unwrap()
            .is_empty()
    );
    shot(&c, "lead").await;
    accessible(&c, "lead").await;

    // A contact's data is text, never markup.
    c.goto(&format!("{base}/leads/xss-lead")).await.unwrap();
    let cells = texts(&c, "table.attributes td").await;
    assert!(
        cells.contains(&"<script>alert(1)</script>".to_string()),
        "{cells:?}"
    );
    assert!(
        cells.contains(&"<img src=x onerror=alert(2)>".to_string()),
        "{cells:?}"
    );
    assert!(c.get_alert_text().await.is_err(), "no alert may open");
    assert!(
        c.find_all(Locator::Css("main img"))
            .await
            .unwrap()
            .is_empty()
    );

    // The search box finds leads by id or attribute value.
    c.goto(&format!("{base}/leads")).await.unwrap();
    type_into(&c, "q", "XSS-L").await;
    click(&c, "form.filters button").await;
    wait_for_query(&c, "q=XSS-L").await;
    assert_eq!(texts(&c, "table.leads tbody th a").await, ["xss-lead"]);

    // The overview.
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(text(&c, "h1").await, "Overview");
    // Figures still being computed are announced, and the page reloads
    // itself until they are there.
    wait_for_element(&c, "#hist-h").await;
    assert!(c.find(Locator::Css("#hist-h + figure svg")).await.is_ok());
    // The funnel narrows: all leads, then MQL (or beyond), then SQL.
    let funnel = texts(&c, "#funnel-h + table th").await;
    assert_eq!(funnel, ["all leads", "mql", "sql"]);
    let counts: Vec<u64> = texts(&c, "#funnel-h + table td.num")
        .await
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]) && counts[0] == 301,
        "{counts:?}"
    );
    // Top movers, largest change first.
    let changes: Vec<f64> = texts(&c, "#movers-h + table tbody td:last-child")
        .await
        .iter()
        .map(|n| n.parse::<f64>().unwrap().abs())
        .collect();
    assert!(
        !changes.is_empty() && changes.windows(2).all(|w| w[0] >= w[1]),
        "{changes:?}"
    );
    shot(&c, "overview").await;
    accessible(&c, "overview").await;

    // The model: its rules by dimension; a change with a problem is shown
    // at its line and changes nothing; a good one is previewed, applied,
    // and its difference from the version before is listed.
    c.goto(&format!("{base}/model")).await.unwrap();
    let captions = texts(&c, "table.rules caption").await;
    assert!(
        captions[0].starts_with("fit: 0 to 100 points"),
        "{captions:?}"
    );
    shot(&c, "model").await;
    accessible(&c, "model").await;
    let original = c
        .find(Locator::Id("model-text"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let set_text = |text: String, shows: &'static str| {
        let c = c.clone();
        async move {
            c.execute(
                "document.getElementById('model-text').value = arguments[0];",
                vec![json!(text)],
            )
            .await
            .unwrap();
            click(&c, "form[action='/model/preview'] button").await;
            wait_for_element(&c, shows).await;
        }
    };
    let broken = original.replacen("dimension = \"engagement\"", "dimension = \"engagment\"", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("engagment"))
        .unwrap();
    set_text(broken.clone(), "#problems").await;
    let problems = text(&c, "#problems").await;
    assert!(problems.contains("engagment"), "{problems}");
    assert!(
        problems.starts_with("Line "),
        "{problems} (the rule is above line {line})"
    );
    shot(&c, "model-problems").await;
    set_text(
        original.replace("min_score = 65", "min_score = 60"),
        "#moved",
    )
    .await;
    let moved = text(&c, "#moved").await;
    assert!(
        moved.ends_with("leads would change band or stage."),
        "{moved}"
    );
    shot(&c, "model-preview").await;
    accessible(&c, "model-preview").await;
    click(&c, "form[action='/model/apply'] button").await;
    wait_for_path(&c, "/model").await;
    assert!(text(&c, "main > p").await.starts_with("Version 2:"));
    click_link(&c, "What changed").await;
    wait_for_query(&c, "diff=2").await;
    let changes = texts(&c, "table.diff tbody td code").await;
    let mut changes = changes;
    changes.sort();
    assert_eq!(changes, ["min_score = 60", "min_score = 65"]);
    // The overview shows no figure of the model before: its hot leads are
    // the list's under the new model.
    c.goto(&format!("{base}/")).await.unwrap();
    wait_for_element(&c, "#bands-h").await;
    let hot_overview = text(&c, "#bands-h + table tbody tr:first-child td").await;
    c.goto(&format!("{base}/leads?band=hot")).await.unwrap();
    let hot_list = text(&c, "#count").await;
    assert!(
        hot_list.starts_with(&format!("{hot_overview} leads")),
        "{hot_overview} vs {hot_list}"
    );

    // A backtest on stored outcomes: conversion and lift per band.
    c.goto(&format!(
        "{base}/model/backtest?outcome=deal_won&horizon_days=90"
    ))
    .await
    .unwrap();
    let summary = text(&c, "#backtest-summary").await;
    assert!(
        summary.contains("converted within 90 days; ROC AUC"),
        "{summary}"
    );
    let bands = texts(&c, "table.backtest:first-of-type tbody th").await;
    assert_eq!(bands[..3], ["hot", "lukewarm", "cold"], "{bands:?}");
    shot(&c, "backtest").await;
    accessible(&c, "backtest").await;

    // Segments, webhooks and keys, as an admin manages them.
    c.goto(&format!("{base}/segments")).await.unwrap();
    let segments = texts(&c, "main table tbody th").await;
    assert_eq!(segments, ["hot-leads"]);
    shot(&c, "segments").await;
    accessible(&c, "segments").await;
    c.goto(&format!("{base}/webhooks")).await.unwrap();
    type_into(&c, "url", "http://127.0.0.1:9/hook").await;
    click(&c, "form[action='/webhooks'] button").await;
    wait_for_element(&c, "#secret").await;
    assert!(text(&c, "#secret").await.starts_with("whsec_"));
    c.goto(&format!("{base}/webhooks")).await.unwrap();
    assert!(
        text(&c, "main h2")
            .await
            .starts_with("Webhook 1: http://127.0.0.1:9/hook")
    );
    shot(&c, "webhooks").await;
    accessible(&c, "webhooks").await;
    c.goto(&format!("{base}/keys")).await.unwrap();
    type_into(&c, "key-name", "from-the-page").await;
    click(&c, "form[action='/keys'] button").await;
    wait_for_element(&c, "#new-key").await;
    let new_key = text(&c, "#new-key").await;
    assert!(new_key.starts_with("lsk_"), "{new_key}");
    // An ingest key for a website, bound to its origin.
    c.goto(&format!("{base}/keys")).await.unwrap();
    type_into(&c, "key-name", "website").await;
    c.find(Locator::Css("#key-scope option[value='ingest']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    type_into(&c, "key-origins", "https://www.example.com").await;
    click(&c, "form[action='/keys'] button").await;
    wait_for_element(&c, "#new-key").await;
    c.goto(&format!("{base}/keys")).await.unwrap();
    assert_eq!(
        texts(&c, "main table tbody th").await,
        ["admin", "write", "read", "from-the-page", "website"]
    );
    let scopes = texts(&c, "main table tbody td:nth-of-type(1)").await;
    assert_eq!(
        scopes[4], "ingest (from https://www.example.com)",
        "{scopes:?}"
    );
    shot(&c, "keys").await;
    accessible(&c, "keys").await;

    // A new hot lead appears on the open list without a reload.
    c.goto(&format!("{base}/leads")).await.unwrap();
    let contact = r#"{"id": "new-hot-lead", "attributes": {"job_title": "CEO", "company_size": "5000", "industry": "software", "country": "US", "phone": "1"}}"#;
    assert_eq!(
        fetch(&c, "POST", "/v1/contacts", Some(&write), Some(contact)).await,
        200
    );
    let events = json!([
        {"id": "nh-1", "contact_id": "new-hot-lead", "type": "demo_request", "timestamp": "2026-06-29T10:00:00Z"},
        {"id": "nh-2", "contact_id": "new-hot-lead", "type": "page_view", "timestamp": "2026-06-29T11:00:00Z", "properties": {"url": "/pricing"}},
        {"id": "nh-3", "contact_id": "new-hot-lead", "type": "page_view", "timestamp": "2026-06-29T12:00:00Z", "properties": {"url": "/pricing/enterprise"}},
    ])
    .to_string();
    assert_eq!(
        fetch(&c, "POST", "/v1/events", Some(&write), Some(&events)).await,
        200
    );
    let started = Instant::now();
    loop {
        let note = text(&c, "#new-hot").await;
        if note.contains("new-hot-lead") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no new hot lead shown: {note:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    shot(&c, "leads-new-hot").await;

    // At a phone's width the page still reads.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/leads")).await.unwrap();
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 1,
        "the page scrolls sideways: {overflow}"
    );
    shot(&c, "leads-phone").await;
    c.set_window_size(1280, 1000).await.unwrap();

    // A read key's session sees, and cannot change anything: no forms to
    // do so, and each form's request, sent anyway with the session's
    // token, is refused.
    click(&c, "form.signout button").await;
    wait_for_path(&c, "/login").await;
    sign_in(&c, &base, &read).await;
    assert!(
        c.find_all(Locator::Css("form.save-segment"))
            .await
            .unwrap()
            .is_empty()
    );
    c.goto(&format!("{base}/leads/{first}")).await.unwrap();
    assert!(
        c.find_all(Locator::Css("a.danger"))
            .await
            .unwrap()
            .is_empty()
    );
    let csrf = c
        .find(Locator::Css("form.signout input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    for (path, body) in [
        (format!("/leads/{first}/delete"), format!("csrf={csrf}")),
        (
            "/keys".to_string(),
            format!("csrf={csrf}&name=x&scope=admin"),
        ),
        ("/keys/1/revoke".to_string(), format!("csrf={csrf}")),
        (
            "/webhooks".to_string(),
            format!("csrf={csrf}&url=http%3A%2F%2Fx&band=on"),
        ),
        ("/webhooks/1/delete".to_string(), format!("csrf={csrf}")),
        ("/segments".to_string(), format!("csrf={csrf}&name=x")),
        (
            "/segments/hot-leads/delete".to_string(),
            format!("csrf={csrf}"),
        ),
        (
            "/model/preview".to_string(),
            format!("csrf={csrf}&text=name%20%3D%20%22x%22"),
        ),
        (
            "/model/apply".to_string(),
            format!("csrf={csrf}&text=name%20%3D%20%22x%22"),
        ),
        (
            "/leads/segment".to_string(),
            format!("csrf={csrf}&name=mine&band=hot"),
        ),
    ] {
        assert_eq!(
            fetch(&c, "POST", &path, None, Some(&body)).await,
            403,
            "{path}"
        );
    }
    c.goto(&format!("{base}/model")).await.unwrap();
    assert!(
        c.find_all(Locator::Css("textarea"))
            .await
            .unwrap()
            .is_empty()
    );
    let nav = texts(&c, "nav[aria-label=Main] a").await;
    assert_eq!(nav, ["Overview", "Leads", "Model", "Segments"]);
    for page in ["/keys", "/webhooks"] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        assert!(text(&c, "h1").await.starts_with("403"), "{page}");
    }
    c.goto(&format!("{base}/leads/{first}/delete"))
        .await
        .unwrap();
    assert!(text(&c, "h1").await.starts_with("403"));
    c.goto(&format!("{base}/leads/{first}")).await.unwrap();
    assert_eq!(text(&c, "h1").await, format!("Lead {first}"), "still there");

    // A form without the session's token is refused even for an admin.
    click(&c, "form.signout button").await;
    wait_for_path(&c, "/login").await;
    sign_in(&c, &base, &admin).await;
    let forged = format!("csrf={}", "0".repeat(64));
    assert_eq!(
        fetch(
            &c,
            "POST",
            &format!("/leads/{first}/delete"),
            None,
            Some(&forged)
        )
        .await,
        403
    );
    c.close().await.unwrap();
}

/// A model with a predictive dimension: the lead page shows the learned
/// likelihood to convert and the factors behind it, as `explain` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_shows_its_predicted_likelihood_and_its_factors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = leadscore([
        "generate",
        "--contacts",
        "400",
        "--events",
        "4000",
        "--seed",
        "9",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Past leads whose conversion follows their industry and size, with
    // a few exceptions so that both outcomes occur in every group.
    let contacts = std::fs::read_to_string(d.join("contacts.csv")).unwrap();
    let mut rows = contacts.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (industry, size) = (col("industry"), col("company_size"));
    let mut history = String::from("industry,company_size,converted\n");
    for (n, row) in rows.enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        let big = cells[size].parse::<f64>().is_ok_and(|s| s > 200.0);
        let likely = (cells[industry] == "software") as u8 + big as u8;
        let converted = (likely + (n % 7 == 0) as u8 >= 2) as u8;
        history.push_str(&format!(
            "{},{},{converted}\n",
            cells[industry], cells[size]
        ));
    }
    std::fs::write(d.join("history.csv"), history).unwrap();
    let out = leadscore([
        "train",
        "--data",
        d.join("history.csv").to_str().unwrap(),
        "--label",
        "converted",
        "--out",
        d.join("likelihood.json").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let model = common::starter_with_likelihood();
    std::fs::write(d.join("model.toml"), model).unwrap();
    let db = d.join("predictive.db");
    run(
        &["init", "--model", d.join("model.toml").to_str().unwrap()],
        &db,
    );
    run(
        &[
            "import",
            "contacts",
            d.join("contacts.csv").to_str().unwrap(),
        ],
        &db,
    );
    run(
        &["import", "events", d.join("events.csv").to_str().unwrap()],
        &db,
    );
    let read = run(&["keys", "create", "--scope", "read", "--name", "r"], &db);
    let read = read.lines().last().unwrap().trim().to_owned();
    let (_server, base) = serve(&db);
    let (_driver, c) = browser(&d.join("profile")).await;

    sign_in(&c, &base, &read).await;
    let first = text(&c, "table.leads tbody th a").await;
    c.goto(&format!("{base}/leads/{first}")).await.unwrap();
    let heading = text(&c, "section.predicted h3").await;
    assert!(
        heading.starts_with("Likelihood to convert (likelihood): ") && heading.ends_with('%'),
        "{heading}"
    );
    // The same probability as `explain` gives.
    let explained: Value =
        serde_json::from_str(&run(&["explain", &first, "--format", "json"], &db)).unwrap();
    let predicted = explained["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "likelihood")
        .unwrap()["predicted"]
        .clone();
    let percent = 100.0 * predicted["probability"].as_f64().unwrap();
    assert!(
        heading.contains(&format!("{percent:.1} %")),
        "{heading} vs {percent}"
    );
    let factors = texts(&c, "section.predicted li").await;
    let expected = predicted["top_positive"].as_array().unwrap().len()
        + predicted["top_negative"].as_array().unwrap().len();
    assert!(expected > 0 && factors.len() == expected, "{factors:?}");
    assert!(
        factors.iter().all(
            |f| (f.starts_with("industry = ") || f.starts_with("company_size = "))
                && f.ends_with(" log-odds")
        ),
        "{factors:?}"
    );
    shot(&c, "lead-predictive").await;
    accessible(&c, "lead-predictive").await;
    c.close().await.unwrap();
}

/// A website on another origin embeds `/t.js` with an ingest key bound to
/// that origin: its page views arrive as an anonymous visitor's, and an
/// `identify` joins them to the lead. The ingest key reads nothing, and
/// another origin cannot use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_website_sends_page_views_and_identifies_through_the_snippet() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db");
    let keys = common::starter_database(&db, NOW, &["read"]);
    let read = keys[0].clone();
    let (_server, base) = serve(&db);
    // The website: another origin (host and port) serving two pages.
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let site_origin = format!("http://localhost:{}", site.local_addr().unwrap().port());
    let ingest = run(
        &[
            "keys",
            "create",
            "--scope",
            "ingest",
            "--origin",
            &site_origin,
        ],
        &db,
    );
    let ingest = ingest.lines().last().unwrap().trim().to_owned();
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><title>Acme</title>\
         <script>window.leadscore=window.leadscore||function(){{(leadscore.q=leadscore.q||[]).push(arguments)}}</script>\
         <script async src=\"{base}/t.js\" data-key=\"{ingest}\"></script></head>\
         <body><h1>Acme</h1></body></html>"
    );
    // Under /consent/, the site asks for consent before anything is sent.
    let asking = page.replace(" data-key=", " data-consent=\"required\" data-key=");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in site.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let page = if head.starts_with("GET /consent/") {
                &asking
            } else {
                &page
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = s.write_all(answer.as_bytes());
        }
    });
    let (_driver, c) = browser(&dir.path().join("profile")).await;
    let stored = |sql: &str, id: &str| -> i64 {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        conn.query_row(sql, [id], |r| r.get(0)).unwrap_or(0)
    };
    let page_views = "SELECT count(*) FROM events e JOIN contacts c ON c.id = e.contact WHERE c.ext_id = ?1 AND e.type = 'page_view'";
    let wait_for = |what: &str, sql: &'static str, id: String, want: i64| {
        let started = Instant::now();
        while stored(sql, &id) != want {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}: {id}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    c.goto(&format!("{site_origin}/")).await.unwrap();
    c.goto(&format!("{site_origin}/pricing")).await.unwrap();
    let anonymous = c
        .get_named_cookie("ls_aid")
        .await
        .expect("a first-party cookie with the anonymous id")
        .value()
        .to_owned();
    wait_for(
        "two page views of the visitor",
        page_views,
        anonymous.clone(),
        2,
    );
    c.execute(
        "leadscore('identify', {userId: 'web-lead-1', job_title: 'VP Sales', company_size: '250'});",
        vec![],
    )
    .await
    .unwrap();
    wait_for(
        "the visitor's page views joined the lead",
        page_views,
        "web-lead-1".into(),
        2,
    );
    assert_eq!(stored(page_views, &anonymous), 0, "the visitor is gone");
    let (status, lead) = common::request(
        base.trim_start_matches("http://"),
        "GET",
        "/v1/contacts/web-lead-1",
        &read,
        &[],
        b"",
    );
    assert_eq!(status, 200, "{lead}");
    assert_eq!(lead["attributes"]["job_title"], "VP Sales", "{lead}");
    // Asked for consent: no cookie and nothing sent until it is given.
    c.delete_all_cookies().await.unwrap();
    let all = "SELECT count(*) FROM events WHERE ?1 = ?1";
    let before = stored(all, "");
    c.goto(&format!("{site_origin}/consent/pricing"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stored(all, ""), before, "nothing sent before consent");
    assert!(
        c.get_named_cookie("ls_aid").await.is_err(),
        "no cookie before consent"
    );
    c.execute("leadscore('consent', true);", vec![])
        .await
        .unwrap();
    wait_for(
        "the page view held until consent",
        all,
        String::new(),
        before + 1,
    );
    assert!(c.get_named_cookie("ls_aid").await.is_ok());
    c.close().await.unwrap();

    // A browser with Do Not Track on sends nothing, even when asked.
    let (_dnt_driver, c) = browser_with(
        &dir.path().join("profile-dnt"),
        json!({"enable_do_not_track": true}),
    )
    .await;
    let before = stored(all, "");
    c.goto(&format!("{site_origin}/")).await.unwrap();
    let dnt: Value = c
        .execute("return navigator.doNotTrack;", vec![])
        .await
        .unwrap();
    assert_eq!(dnt, json!("1"), "the browser sends Do Not Track");
    c.execute("leadscore('track', 'demo_request', {});", vec![])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stored(all, ""), before, "nothing sent under Do Not Track");
    assert!(
        c.get_named_cookie("ls_aid").await.is_err(),
        "no cookie either"
    );
    c.close().await.unwrap();

    // The ingest key reads nothing, and is refused from another origin.
    let addr = base.trim_start_matches("http://");
    for path in [
        "/v1/leads",
        "/v1/contacts/web-lead-1",
        "/v1/contacts/web-lead-1/score",
        "/v1/segments",
        "/v1/model",
        "/metrics",
    ] {
        let (status, body) = common::request(addr, "GET", path, &ingest, &[], b"");
        assert_eq!(status, 403, "{path}: {body}");
    }
    let call = br#"{"type": "page", "messageId": "evil-1", "anonymousId": "x", "properties": {"url": "/"}}"#;
    let (status, body) = common::request(
        addr,
        "POST",
        "/v1/page",
        &ingest,
        &[
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example"),
        ],
        call,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden_origin", "{body}");
}
