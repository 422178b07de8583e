//! `leadscore serve` and `leadscore keys`: the HTTP service on the
//! database, and its API keys.

use std::path::Path;
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use leadscore_core::Timestamp;
use leadscore_store::Scope;

use crate::Failure;

/// `leadscore keys ...`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once, alone on the last line, and only
    /// its hash is stored.
    Create {
        /// What the key may do.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// A name to recognise it by.
        #[arg(long, default_value = "key")]
        name: String,
        /// For an ingest key: a web origin it may be used from
        /// (`https://www.example.com`); repeat for more. None: any.
        #[arg(long = "origin", value_name = "ORIGIN")]
        origins: Vec<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key, by number or name.
    Revoke {
        /// The key's number or name.
        key: String,
    },
}

/// `leadscore webhooks ...`.
#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe a URL to transitions; prints the signing secret once, alone
    /// on the last line.
    Add {
        /// Where to POST deliveries (http:// or https://).
        #[arg(long)]
        url: String,
        /// Which transitions: band, stage, disqualified (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "band,stage,disqualified")]
        events: Vec<String>,
        /// Only contacts in this segment (checked when delivering).
        #[arg(long)]
        segment: Option<String>,
    },
    /// List subscriptions.
    List,
    /// Remove a subscription (its undelivered deliveries are marked dead).
    Remove {
        /// The subscription's number.
        id: i64,
    },
    /// A subscription's delivery log, newest first.
    Deliveries {
        /// The subscription's number.
        id: i64,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// Runs `leadscore webhooks`.
pub fn webhooks(db: &Path, command: WebhooksCommand) -> Result<(), Failure> {
    let mut store = crate::db::open(db)?;
    let now = crate::db::now()?;
    match command {
        WebhooksCommand::Add {
            url,
            events,
            segment,
        } => {
            let url = url.trim().to_owned();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Failure::input(format!(
                    "--url: {url:?} is not an http:// or https:// URL"
                )));
            }
            let kinds: Vec<String> = events.iter().map(|e| e.trim().to_owned()).collect();
            if let Some(bad) = kinds
                .iter()
                .find(|k| !leadscore_store::WEBHOOK_KINDS.contains(&k.as_str()))
            {
                return Err(Failure::input(format!(
                    "--events: {bad:?} is not band, stage or disqualified"
                )));
            }
            let (hook, secret) = store.add_webhook(&url, &kinds, segment.as_deref(), now)?;
            eprintln!(
                "subscription {} to {} for {}; its signing secret is shown once, below",
                hook.id,
                hook.url,
                hook.kinds.join(", ")
            );
            say!("{secret}");
        }
        WebhooksCommand::List => {
            say!("{:>4}  {:<40} {:<28} removed", "id", "url", "events");
            for h in store.webhooks()? {
                say!(
                    "{:>4}  {:<40} {:<28} {}",
                    h.id,
                    h.url,
                    h.kinds.join(","),
                    h.removed_at
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        WebhooksCommand::Remove { id } => {
            if !store.remove_webhook(id, now)? {
                return Err(Failure::input(format!("no live subscription {id}")));
            }
            say!("removed subscription {id}");
        }
        WebhooksCommand::Deliveries { id, limit } => {
            say!(
                "{:>8}  {:<12} {:<10} {:>8}  last error",
                "delivery",
                "contact",
                "state",
                "attempts"
            );
            for d in store.deliveries(id, limit)? {
                say!(
                    "{:>8}  {:<12} {:<10} {:>8}  {}",
                    d.seq,
                    d.contact,
                    d.state,
                    d.attempts,
                    d.last_error.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// A key's scope.
#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Only send events, page views and identify calls (a key that lives
    /// in web pages; see --origin).
    Ingest,
    /// Read scores, contacts and leads.
    Read,
    /// Also send events and contacts, delete contacts.
    Write,
    /// Everything.
    Admin,
}

/// Runs `leadscore keys`.
pub fn keys(db: &Path, command: KeysCommand) -> Result<(), Failure> {
    let mut store = crate::db::open(db)?;
    let now = crate::db::now()?;
    match command {
        KeysCommand::Create {
            scope,
            name,
            origins,
        } => {
            let scope = match scope {
                ScopeArg::Ingest => Scope::Ingest,
                ScopeArg::Read => Scope::Read,
                ScopeArg::Write => Scope::Write,
                ScopeArg::Admin => Scope::Admin,
            };
            let (key, secret) = store.create_key_for(&name, scope, &origins, now)?;
            eprintln!(
                "created key {} '{}' with scope {}; it is shown once, below, and cannot be shown again",
                key.id,
                key.name,
                key.scope.name()
            );
            say!("{secret}");
        }
        KeysCommand::List => {
            say!(
                "{:>4}  {:<20} {:<6} {:<12} {:<22} revoked",
                "id",
                "name",
                "scope",
                "starts with",
                "created"
            );
            for k in store.keys()? {
                say!(
                    "{:>4}  {:<20} {:<6} {:<12} {:<22} {}",
                    k.id,
                    k.name,
                    k.scope.name(),
                    k.prefix,
                    k.created_at,
                    k.revoked_at
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        KeysCommand::Revoke { key } => {
            if !store.revoke_key(&key, now)? {
                return Err(Failure::input(format!(
                    "no live key with number or name {key:?}"
                )));
            }
            say!(
                "revoked {key}; a running service stops accepting it within {} s",
                leadscore_server::state::KEY_CACHE.as_secs()
            );
        }
    }
    Ok(())
}

/// Runs `leadscore serve`.
/// `leadscore serve`'s options.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: String,
    /// Days a settled webhook delivery (delivered, or skipped for its
    /// segment) stays in the delivery log; pending and dead ones always
    /// stay (0: keep everything).
    #[arg(long, default_value_t = leadscore_server::state::DELIVERY_LOG_DAYS)]
    delivery_log_days: u32,
    /// Seconds a connection may take to send a request's headers, counted
    /// from when it opens or finished its previous request (so also how
    /// long an idle keep-alive connection stays open); then it is closed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    header_timeout: std::time::Duration,
    /// Seconds a request body may take to arrive after its headers; then
    /// the request is answered 408.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    body_timeout: std::time::Duration,
    /// Connections open at once, at most; one more is answered 503.
    /// Default: the open-file limit less 64, at most 4096.
    #[arg(long)]
    max_connections: Option<usize>,
    /// How the log on standard error is written: `text` (a line per
    /// event) or `json` (an object per line, for log collectors). Each
    /// request is a line: method, route, status, latency, request id.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Seconds requests in flight get to finish after SIGTERM or Ctrl-C;
    /// then their connections are closed and the service stops.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    shutdown_timeout: std::time::Duration,
}

/// The log's form on standard error.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// A positive number of seconds, at most a day.
fn seconds(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(std::time::Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 (excluded) and 86400"
        )),
    }
}

pub fn serve(db: &Path, args: ServeArgs) -> Result<(), Failure> {
    let ServeArgs {
        bind,
        delivery_log_days,
        header_timeout,
        body_timeout,
        max_connections,
        shutdown_timeout,
        log_format,
    } = args;
    let bind = bind.as_str();
    let defaults = leadscore_server::ConnectionLimits::default();
    let limits = leadscore_server::ConnectionLimits {
        header: header_timeout,
        body: body_timeout,
        max_connections: max_connections.unwrap_or(defaults.max_connections),
        shutdown: shutdown_timeout,
    };
    let store = crate::db::open(db)?;
    // The request log and background problems (webhook sender, storing
    // thread) go to standard error.
    let log = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match log_format {
        LogFormat::Text => log.try_init(),
        LogFormat::Json => log.json().with_current_span(true).try_init(),
    };
    let fixed = crate::db::fixed_now()?;
    let clock: Arc<dyn Fn() -> Timestamp + Send + Sync> = Arc::new(move || {
        fixed.unwrap_or_else(|| {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Timestamp(d.as_nanos() as i64)
        })
    });
    let state = leadscore_server::AppState::new(store, clock)?
        .with_delivery_log_days(delivery_log_days)
        .with_limits(limits);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| Failure::input(format!("--bind {bind}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::other(format!("--bind {bind}: {e}")))?;
        say!("listening on http://{addr}");
        leadscore_server::serve(listener, state, leadscore_server::termination())
            .await
            .map_err(|e| Failure::other(format!("serving: {e}")))?;
        eprintln!("stopped");
        Ok(())
    })
}
