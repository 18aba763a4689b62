//! The accept loop and the life of each connection: TLS handshake, HTTP/1.1 or HTTP/2, timeouts,
//! the connection cap with idle shedding ([`table`]), and a bounded drain on shutdown.
//!
//! Nothing a client can do with a connection holds it for long without sending requests:
//! - the TLS handshake must finish within [`HANDSHAKE_TIMEOUT`];
//! - HTTP/1.1 request headers within [`HEADER_READ_TIMEOUT`] (the body has its own timeout in
//!   [`super::http`]);
//! - HTTP/2 peers must answer a PING every [`KEEPALIVE_INTERVAL`] within [`KEEPALIVE_TIMEOUT`],
//!   and may open at most [`MAX_CONCURRENT_STREAMS`] streams at once;
//! - a connection with no request in flight (no open stream, between keep-alive requests, or
//!   before its first request) for [`Transport::idle_timeout`] is closed gracefully (GOAWAY for
//!   HTTP/2), and so is the longest-idle one when a new connection arrives at the cap.
//!
//! A connection asked to close that has no request in flight is dropped after [`CLOSE_GRACE`],
//! whether or not the peer cooperates; one answering a request gets to finish it.

pub mod table;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use table::{Admission, Conn, Connections};

/// A TLS handshake must finish within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/1.1 request headers must arrive within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an HTTP/2 peer is PINGed.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// How long an HTTP/2 peer has to answer a PING before the connection is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams one HTTP/2 connection may have open at once.
pub const MAX_CONCURRENT_STREAMS: u32 = 32;
/// Largest header block accepted, in bytes (HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`).
pub const MAX_HEADER_LIST_SIZE: u32 = 64 * 1024;
/// How long an idle connection asked to close may take to go before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long shutdown waits for in-flight admissions before giving up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// The connection limits of the server.
#[derive(Clone, Copy, Debug)]
pub struct Transport {
    /// Open connections at most; at the cap the longest-idle one is shed for a newcomer.
    pub max_connections: usize,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` is cancelled, then stops accepting and
/// waits (up to [`DRAIN_TIMEOUT`]) for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    transport: Transport,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let builder = Arc::new(builder());
    let table = Connections::new(transport.max_connections);
    loop {
        let tcp = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => tcp,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(conn) = admit(&table, &shutdown).await else {
            break;
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_connection(
            tcp,
            acceptor.clone(),
            builder.clone(),
            TowerToHyperService::new(app.clone()),
            Arc::new(conn),
            transport.idle_timeout,
            shutdown.clone(),
        ));
    }
    drop(listener);
    tracing::info!(connections = table.len(), "draining in-flight admissions");
    table.close_all();
    let drained = async {
        while !table.is_empty() {
            table.ended().await;
        }
    };
    tokio::select! {
        _ = drained => tracing::info!("webhook server stopped"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("gave up waiting for connections to drain"),
    }
}

/// HTTP/1.1 and HTTP/2 with the timeouts and limits above.
fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    builder
}

/// A slot for a connection just accepted: at once (shedding the longest-idle connection when at
/// the cap), or once one ends when every connection is busy. `None` on shutdown.
async fn admit(table: &Arc<Connections>, shutdown: &CancellationToken) -> Option<Conn> {
    loop {
        match table.admit(Instant::now()) {
            Admission::Admitted(conn) => return Some(conn),
            Admission::AdmittedByShedding(conn) => {
                tracing::debug!("at the connection cap; closing the longest-idle connection");
                return Some(conn);
            }
            Admission::Full => {
                tracing::warn!(
                    connections = table.len(),
                    "every connection is busy; the next waits for one to end"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = table.ended() => {}
                }
            }
        }
    }
}

/// Why a connection is being closed.
#[derive(Debug)]
enum Closing {
    Idle,
    Shed,
    Shutdown,
}

async fn serve_connection<S>(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    builder: Arc<auto::Builder<TokioExecutor>>,
    service: S,
    conn: Arc<Conn>,
    idle_timeout: Duration,
    shutdown: CancellationToken,
) where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let tls = tokio::select! {
        _ = conn.close_requested().cancelled() => return,
        _ = shutdown.cancelled() => return,
        tls = handshake => match tls {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        },
    };
    let service = Counted {
        inner: service,
        conn: conn.clone(),
    };
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    let mut connection = std::pin::pin!(connection);
    let closing = loop {
        let idle_at = conn.idle_deadline(idle_timeout);
        let wake = idle_at.unwrap_or_else(|| Instant::now() + idle_timeout);
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(err) = ended {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            _ = conn.close_requested().cancelled() => break Closing::Shed,
            _ = shutdown.cancelled() => break Closing::Shutdown,
            _ = tokio::time::sleep_until(wake.into()) => {
                if conn.idle_deadline(idle_timeout).is_some_and(|at| at <= Instant::now()) {
                    break Closing::Idle;
                }
            }
        }
    };
    tracing::debug!(reason = ?closing, "closing a connection");
    connection.as_mut().graceful_shutdown();
    let asked = Instant::now();
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let waited = asked.elapsed();
        if (conn.in_flight() == 0 && waited >= CLOSE_GRACE) || waited >= DRAIN_TIMEOUT {
            return;
        }
    }
}

/// Counts each request as in flight on its connection while it is answered.
struct Counted<S> {
    inner: S,
    conn: Arc<Conn>,
}

impl<S, R> hyper::service::Service<R> for Counted<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        let guard = self.conn.request();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(guard);
            answer
        })
    }
}
