//! Client connections: how many may be open and how long each may take.
//!
//! Connections are served by hyper's HTTP/1 with a header-read timeout
//! that also bounds how long a keep-alive connection may stay idle. A
//! request body must arrive within its own deadline (`read_body`, 408).
//! Past [`ConnectionLimits::max_connections`] a new connection is answered
//! 503 and closed, so a crowd of idle or slow clients cannot take every
//! file the process may open. On shutdown the listener closes, requests in
//! flight get [`ConnectionLimits::shutdown`] to finish, and whatever is
//! left is dropped.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::ApiError;
use crate::state::AppState;

/// What the service allows each client connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time a connection may take to send a request's headers, counted from
    /// when it opens or from the end of its previous answer: also how long
    /// an idle keep-alive connection stays open. Past it the connection is
    /// closed.
    pub header: Duration,
    /// Time a request's body may take to arrive, counted from its headers.
    /// Past it the request is answered 408 and the connection closed.
    pub body: Duration,
    /// Connections open at once, at most. A connection past them is
    /// answered 503 and closed at once.
    pub max_connections: usize,
    /// After a stop signal, time requests in flight get to finish before
    /// their connections are dropped.
    pub shutdown: Duration,
}

/// Files the process keeps for itself, below its open-file limit, when the
/// connection bound is derived from it: the database and its log, the
/// inbox, the reading handles, the webhook sender's sockets.
const RESERVED_FILES: u64 = 64;

/// Default connection bound when the open-file limit is unknown or large.
const MAX_CONNECTIONS: u64 = 4_096;

impl Default for ConnectionLimits {
    /// Headers within 10 s, bodies within 30 s, shutdown within 10 s, and
    /// at most 4 096 connections or the open-file limit less 64.
    fn default() -> Self {
        ConnectionLimits {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            max_connections: default_max_connections(),
            shutdown: Duration::from_secs(10),
        }
    }
}

/// The open-file limit (soft) less 64 files kept for the process itself,
/// at most 4 096 and at least 16.
pub fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let bound = soft.map_or(MAX_CONNECTIONS, |n| {
        n.saturating_sub(RESERVED_FILES).min(MAX_CONNECTIONS)
    });
    usize::try_from(bound.max(16)).unwrap_or(16)
}

/// Accepts connections on `listener` and serves `app` on each until
/// `shutdown` completes; then stops accepting, lets requests in flight
/// finish for [`ConnectionLimits::shutdown`], and drops the rest.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .keep_alive(true);
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of files or the like: a moment for connections
                    // to close rather than a busy loop.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            tasks.spawn(busy(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tasks.spawn(async move {
            let _permit = permit;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown) => {
            tracing::warn!(
                seconds = limits.shutdown.as_secs_f64(),
                "requests still in flight after the shutdown deadline: their connections are closed"
            );
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Answers a connection past the bound with 503 and closes it.
async fn busy(mut stream: TcpStream) {
    let body = serde_json::json!({ "error": {
        "code": "too_many_connections",
        "message": "the service has as many connections open as it allows; try again in a moment",
        "field": null,
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Reads a request's whole body within [`ConnectionLimits::body`] (408
/// past it, and the connection is closed) and at most
/// [`crate::wire::MAX_BODY`] bytes (413), before any handler runs; a
/// compressed body (`Content-Encoding: gzip` or `deflate`) is inflated
/// here, within the same limit, so handlers see it as sent uncompressed.
pub(crate) async fn read_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let deadline = state.limits.body;
    let read =
        tokio::time::timeout(deadline, axum::body::to_bytes(body, crate::wire::MAX_BODY)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                ApiError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "payload_too_large",
                    message: format!(
                        "the request body is larger than {} bytes",
                        crate::wire::MAX_BODY
                    ),
                    field: Some("body".into()),
                }
                .into_response()
            } else {
                ApiError::bad(
                    "unreadable_body",
                    format!("the request body could not be read: {e}"),
                    Some("body"),
                )
                .into_response()
            };
        }
        Err(_) => {
            let mut answer = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    deadline.as_secs_f64()
                ),
            )
            .into_response();
            answer.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return answer;
        }
    };
    let mut parts = parts;
    let bytes = match inflate(&parts.headers, bytes).await {
        Ok(Some(inflated)) => {
            parts.headers.remove(axum::http::header::CONTENT_ENCODING);
            parts.headers.insert(
                axum::http::header::CONTENT_LENGTH,
                axum::http::HeaderValue::from(inflated.len()),
            );
            inflated
        }
        Ok(None) => axum::body::Bytes::new(),
        Err(e) => return e.into_response(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// A body's `Content-Encoding`.
enum Encoding {
    /// None, or `identity`.
    Plain,
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// `deflate`: zlib-wrapped (RFC 9110), or raw deflate as some clients
    /// send it.
    Deflate,
}

/// Inflates a compressed body, at most [`crate::wire::MAX_BODY`] bytes of
/// it (413 past them, so a small body that inflates to gigabytes is never
/// held); `Ok(None)` for an empty body, which stays empty. An encoding
/// other than gzip or deflate is a 415; a body that is not what its
/// encoding says (truncated, or plain text) a 400.
async fn inflate(
    headers: &axum::http::HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Option<axum::body::Bytes>, ApiError> {
    let encoding = match headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .trim()
                .to_ascii_lowercase()
        })
        .as_deref()
    {
        None | Some("" | "identity") => Encoding::Plain,
        Some("gzip" | "x-gzip") => Encoding::Gzip,
        Some("deflate") => Encoding::Deflate,
        Some(other) => {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_encoding",
                message: format!(
                    "Content-Encoding {other:?} is not taken: send the body as is, gzip or deflate"
                ),
                field: Some("header.content-encoding".into()),
            });
        }
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    if matches!(encoding, Encoding::Plain) {
        return Ok(Some(bytes));
    }
    let inflated = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let limit = crate::wire::MAX_BODY as u64 + 1;
        let mut out = Vec::new();
        let (name, read) = match encoding {
            Encoding::Gzip => (
                "gzip",
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .take(limit)
                    .read_to_end(&mut out),
            ),
            _ => {
                let zlib = flate2::read::ZlibDecoder::new(&bytes[..])
                    .take(limit)
                    .read_to_end(&mut out);
                if zlib.is_err() {
                    out.clear();
                    (
                        "deflate",
                        flate2::read::DeflateDecoder::new(&bytes[..])
                            .take(limit)
                            .read_to_end(&mut out),
                    )
                } else {
                    ("deflate", zlib)
                }
            }
        };
        (name, read.map(|_| out))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("inflating the body: {e}"),
        )
    })?;
    match inflated {
        (_, Ok(out)) if out.len() > crate::wire::MAX_BODY => Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!(
                "the request body inflates past {} bytes",
                crate::wire::MAX_BODY
            ),
            field: Some("body".into()),
        }),
        (_, Ok(out)) => Ok(Some(out.into())),
        (name, Err(e)) => Err(ApiError::bad(
            "invalid_encoding",
            format!("the body is not valid {name} data, as its Content-Encoding says: {e}"),
            Some("body"),
        )),
    }
}
