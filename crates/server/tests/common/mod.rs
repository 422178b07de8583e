//! A real server in the test's process, on a loopback port, over a fresh
//! database with the starter model and two keys.

use std::sync::Arc;

use leadscore_core::Timestamp;
use leadscore_server::{AppState, serve};
use leadscore_store::{Scope, Store};

/// The starter model the database begins with.
pub const MODEL: &str = include_str!("../../../../examples/starter-model.toml");

/// A database, the service's state over it, and its keys.
pub struct Fixture {
    /// Holds the database file.
    pub dir: tempfile::TempDir,
    /// The service's state (clock fixed at `now`).
    pub state: AppState,
    /// A key with the admin scope.
    pub admin: String,
    /// A key with the read scope.
    pub read: String,
}

/// A fresh database with the starter model, its clock at 2026-06-30.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = Timestamp::parse("2026-06-30T00:00:00Z").expect("time");
    let mut store = Store::create(&dir.path().join("t.db"), MODEL, now).expect("database");
    let (_, admin) = store.create_key("admin", Scope::Admin, now).expect("key");
    let (_, read) = store.create_key("read", Scope::Read, now).expect("key");
    let state = AppState::new(store, Arc::new(move || now)).expect("readers");
    Fixture {
        dir,
        state,
        admin,
        read,
    }
}

/// A running server: its base URL, and how to stop it.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts serving `state` on a free loopback port.
pub async fn start(state: AppState) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Running { base, stop, server }
}

impl Running {
    /// Stops the server and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.expect("server task").expect("served");
    }
}

/// A runtime like the service's.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
