//! The HTTP server loop (hyper, HTTP/1.1) in place of `axum::serve`, which has no header
//! timeout, no connection cap and a shutdown that waits for every client forever. Here:
//! - a request head must arrive within `header_timeout`, on a new connection and between
//!   keep-alive requests alike, so silent and half-sent connections are closed;
//! - a client that stops reading its answer for `write_timeout` is cut, so a slow reader
//!   cannot hold a connection (or the answer's memory);
//! - at most `max_connections` are open; at the cap the longest-idle connection (no request
//!   in flight) is closed to make room, so a flood of silent connections cannot lock out a
//!   real client; when every connection is busy the newcomer gets a 503 at once;
//! - accept errors (the fd limit) are retried shortly (logged through the rate limit);
//! - on shutdown, open connections finish within `shutdown_timeout`, then are cut.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::Request, response::Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
};
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::{
    connections::{Connections, Handle, Room, TrackedBody},
    stats::HttpStats,
};

/// Limits of the HTTP server.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time allowed to send a request head (also the longest idle time between keep-alive
    /// requests).
    pub header_timeout: Duration,
    /// Longest time a client may leave its answer unread.
    pub write_timeout: Duration,
    /// Time allowed for open connections to finish at shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            // Room for every MCP stream the session caps allow (2 x 256) and as many again.
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// The answer to a connection over the cap when none can be closed.
fn over_capacity() -> Vec<u8> {
    let body = r#"{"error":"too many open connections, every one busy; try again shortly"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Refusals answered at once (each reads the request it refuses for up to a second, so
/// that closing does not reset the connection before the answer is read); more are cut.
const REFUSALS_AT_ONCE: usize = 64;

/// Answers a connection over the cap with a 503 and closes it. The answer goes after the
/// request's head (or up to 8 KiB of it): a client handed an answer before it sent its
/// request takes it for a broken connection instead of reading the 503.
async fn refuse(mut stream: TcpStream, answer: Arc<[u8]>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            // Only the new bytes (and the three before them) can complete the blank line.
            let from = head.len().saturating_sub(3);
            head.extend_from_slice(&chunk[..n]);
            if n == 0 || head.len() >= 8192 || head[from..].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

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
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let refusal: Arc<[u8]> = over_capacity().into();
    let mut tasks = JoinSet::new();
    let finishing = CancellationToken::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("accepting a connection failed: {e}");
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
                if let Ok(permit) = refusals.clone().try_acquire_owned() {
                    let answer = refusal.clone();
                    tokio::spawn(async move {
                        refuse(stream, answer).await;
                        drop(permit);
                    });
                }
                continue;
            }
        }
        stats.connection("accepted");
        let registered = connections.add();
        let task = ConnectionTask {
            app: app.clone(),
            handle: registered.handle.clone(),
            stats: stats.clone(),
            limits: limits.clone(),
            finishing: finishing.clone(),
        };
        tasks.spawn(async move {
            // Leaves the register however the task ends.
            let _registered = registered;
            task.run(stream).await;
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
    handle: Handle,
    stats: Arc<HttpStats>,
    limits: ServerLimits,
    finishing: CancellationToken,
}

/// Counts the connection open while it lives.
struct Open(Arc<HttpStats>);

impl Open {
    fn new(stats: &Arc<HttpStats>) -> Self {
        stats.open_connections.inc();
        Self(stats.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open_connections.dec();
    }
}

impl ConnectionTask {
    async fn run(&self, stream: TcpStream) {
        let _open = Open::new(&self.stats);
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(self.limits.write_timeout));
        let io = TokioIo::new(Box::pin(stream));
        let service = {
            let app = self.app.clone();
            let handle = self.handle.clone();
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let busy = handle.busy();
                let app = app.clone();
                async move {
                    let response: Response = match app.oneshot(req.map(Body::new)).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    Ok::<_, Infallible>(
                        response.map(|inner| Body::new(TrackedBody::new(inner, busy))),
                    )
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let connection = &self.handle.connection;
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = connection.evicted().cancelled() => {
                if connection.in_flight() {
                    // A request began as it was chosen: let that one finish.
                    conn.as_mut().graceful_shutdown();
                    conn.as_mut().await
                } else {
                    Ok(())
                }
            }
            () = self.finishing.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        if let Err(e) = result {
            if e.is_timeout() {
                // After a request it was idle keep-alive time; before, a client too slow
                // (or never meaning) to send one.
                self.stats.connection(if connection.has_served() {
                    "idle_timeout"
                } else {
                    "header_timeout"
                });
            } else if std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            }) {
                self.stats.connection("write_timeout");
            } else {
                tracing::debug!("HTTP connection ended: {e}");
            }
        }
    }
}
