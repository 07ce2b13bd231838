//! The HTTP server loop (hyper, HTTP/1.1) in place of `axum::serve`, which has no header
//! timeout, no connection cap and a shutdown that waits for every client forever. Here:
//! - a request head must arrive within `header_timeout`, on a new connection and between
//!   keep-alive requests alike, so silent and half-sent connections are closed;
//! - at most `max_connections` are open; at the cap the longest-idle connection (no request
//!   in flight) is closed to make room, so a flood of silent connections cannot lock out a
//!   real client; when every connection is busy the newcomer gets a 503 at once;
//! - accept errors (the fd limit) are logged once per interval and retried shortly;
//! - on shutdown, open connections finish within `shutdown_timeout`, then are cut.

use std::{
    collections::HashMap,
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, HttpBody},
    extract::Request,
    response::Response,
};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::stats::HttpStats;
use crate::logging::RateLimit;

/// Limits of the HTTP server.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time allowed to send a request head (also the longest idle time between keep-alive
    /// requests).
    pub header_timeout: Duration,
    /// Time allowed for open connections to finish at shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// One open connection: requests in flight and served, idle since when, how to close it.
struct Connection {
    busy: AtomicUsize,
    served: AtomicU64,
    idle_since_ms: AtomicU64,
    close: CancellationToken,
}

/// The open connections.
struct Connections {
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Connections {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::default(),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn add(&self) -> (u64, Arc<Connection>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            busy: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            close: CancellationToken::new(),
        });
        self.open().insert(id, connection.clone());
        (id, connection)
    }

    fn remove(&self, id: u64) {
        self.open().remove(&id);
    }

    /// Makes room for one more under `max`, closing the longest-idle connection when full.
    fn make_room(&self, max: usize) -> Room {
        let open = self.open();
        if open.len() < max {
            return Room::Free;
        }
        let idlest = open
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0 && !c.close.is_cancelled())
            .min_by_key(|c| c.idle_since_ms.load(Ordering::Relaxed));
        match idlest {
            Some(connection) => {
                connection.close.cancel();
                Room::Evicted
            }
            None => Room::Full,
        }
    }
}

/// Whether a new connection fits.
enum Room {
    /// Under the cap.
    Free,
    /// An idle connection was closed to make room.
    Evicted,
    /// At the cap, every connection busy.
    Full,
}

/// Marks its connection busy while a request (its response body included) is in flight.
struct Busy {
    connection: Arc<Connection>,
    connections: Arc<Connections>,
}

impl Busy {
    fn new(connection: Arc<Connection>, connections: Arc<Connections>) -> Self {
        connection.busy.fetch_add(1, Ordering::AcqRel);
        connection.served.fetch_add(1, Ordering::Relaxed);
        Self {
            connection,
            connections,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connection
            .idle_since_ms
            .store(self.connections.now_ms(), Ordering::Relaxed);
        self.connection.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it is sent or dropped.
struct TrackedBody {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a connection over the cap when none can be closed: written straight to
/// the fresh socket (its send buffer is empty, so it fits), then closed.
const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 74\r\n\r\n\
{\"error\":\"too many open connections; every one is busy. Try again shortly\"}";

static ACCEPT_ERRORS: RateLimit = RateLimit::new(Duration::from_secs(10));

/// Serves `app` on `listener` until `shutdown` is cancelled, then gives open connections
/// `shutdown_timeout` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    stats: Arc<HttpStats>,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Connections::new());
    let mut tasks = JoinSet::new();
    let finishing = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if let Some(suppressed) = ACCEPT_ERRORS.allow() {
                    tracing::warn!(
                        "accepting a connection failed: {e} ({suppressed} more such errors since the last report)"
                    );
                }
                // Out of file descriptors: the connections being closed will free some.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match connections.make_room(limits.max_connections) {
            Room::Free => {}
            Room::Evicted => stats.connection("evicted"),
            Room::Full => {
                stats.connection("refused");
                let _ = stream.try_write(OVER_CAPACITY);
                continue;
            }
        }
        stats.connection("accepted");
        let (id, connection) = connections.add();
        let conn = ConnectionTask {
            app: app.clone(),
            connection,
            connections: connections.clone(),
            stats: stats.clone(),
            header_timeout: limits.header_timeout,
            finishing: finishing.clone(),
        };
        tasks.spawn(async move {
            conn.run(TokioIo::new(stream)).await;
            conn.connections.remove(id);
        });
    }
    drop(listener);
    finishing.cancel();
    let open = tasks.len();
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            "closing {} of {open} connections still open after {:?}",
            tasks.len(),
            limits.shutdown_timeout
        );
        tasks.shutdown().await;
    }
}

/// What one connection's task needs.
struct ConnectionTask {
    app: Router,
    connection: Arc<Connection>,
    connections: Arc<Connections>,
    stats: Arc<HttpStats>,
    header_timeout: Duration,
    finishing: CancellationToken,
}

impl ConnectionTask {
    async fn run(&self, io: TokioIo<tokio::net::TcpStream>) {
        self.stats.open_connections.inc();
        let service = {
            let app = self.app.clone();
            let connection = self.connection.clone();
            let connections = self.connections.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let busy = Busy::new(connection.clone(), connections.clone());
                let app = app.clone();
                async move {
                    let response: Response = match app.oneshot(req.map(Body::new)).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    Ok::<_, Infallible>(
                        response.map(|inner| Body::new(TrackedBody { inner, _busy: busy })),
                    )
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let result = tokio::select! {
            result = conn.as_mut() => result,
            // Idle (nothing in flight) and chosen to make room: drop it.
            () = self.connection.close.cancelled() => Ok(()),
            () = self.finishing.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        if let Err(e) = result {
            if e.is_timeout() {
                // After a request it was idle keep-alive time; before, a client too slow
                // (or never meaning) to send one.
                let served = self.connection.served.load(Ordering::Relaxed) > 0;
                self.stats.connection(if served {
                    "idle_timeout"
                } else {
                    "header_timeout"
                });
            } else {
                tracing::debug!("HTTP connection ended: {e}");
            }
        }
        self.stats.open_connections.dec();
    }
}
