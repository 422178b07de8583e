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
        KeysCommand::Create { scope, name } => {
            let scope = match scope {
                ScopeArg::Read => Scope::Read,
                ScopeArg::Write => Scope::Write,
                ScopeArg::Admin => Scope::Admin,
            };
            let (key, secret) = store.create_key(&name, scope, now)?;
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
pub fn serve(db: &Path, bind: &str, delivery_log_days: u32) -> Result<(), Failure> {
    let store = crate::db::open(db)?;
    // Background problems (webhook sender, storing thread) are logged to
    // standard error.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let fixed = crate::db::fixed_now()?;
    let clock: Arc<dyn Fn() -> Timestamp + Send + Sync> = Arc::new(move || {
        fixed.unwrap_or_else(|| {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Timestamp(d.as_nanos() as i64)
        })
    });
    let state =
        leadscore_server::AppState::new(store, clock)?.with_delivery_log_days(delivery_log_days);
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
        eprintln!("stopped: every request in flight was answered");
        Ok(())
    })
}
