//! The HTTP side's own counters (connections, MCP sessions, answers by route and status),
//! shared by the server loop, the routes and `/metrics`. Client-caused answers are counted
//! here instead of being logged, so a flood of requests cannot flood the log.

use std::sync::{Arc, Mutex};

use axum::{
    Extension,
    extract::{MatchedPath, Request},
    http::StatusCode,
    middleware::Next,
    response::Response,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        gauge::Gauge,
        histogram::Histogram,
    },
    registry::Registry,
};

/// What happened to a connection.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionEvent {
    /// `accepted`, `refused` (over the cap, none idle to close), `evicted` (idle, closed
    /// to make room), `header_timeout` (no complete first request head in time),
    /// `idle_timeout` (no next request in time on a keep-alive connection),
    /// `write_timeout` (the client left its answer unread too long).
    pub event: &'static str,
}

/// An MCP transport.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Transport {
    /// `streamable_http` or `sse`.
    pub transport: &'static str,
}

/// A route and the status it answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Answered {
    /// The route's path (`/api/events`), `other` for paths no route serves.
    pub route: String,
    /// The HTTP status code.
    pub status: u16,
}

/// The buckets of request durations, in seconds: from `/health`'s microseconds to the
/// query deadline's seconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct DurationBuckets;

impl MetricConstructor<Histogram> for DurationBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new([
            0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ])
    }
}

/// Reads a transport's open session count; None when it cannot be read without waiting.
type SessionCount = Arc<dyn Fn() -> Option<usize> + Send + Sync>;

/// Counters of the HTTP server, MCP transports and routes.
pub struct HttpStats {
    /// Connections open now.
    pub open_connections: Gauge,
    /// Connection events.
    pub connections: Family<ConnectionEvent, Counter>,
    /// MCP sessions refused because the transport's cap was reached.
    pub sessions_refused: Family<Transport, Counter>,
    /// Answers by route and status.
    pub answers: Family<Answered, Counter>,
    /// Time from a request's head to its answer, by route and status.
    pub durations: Family<Answered, Histogram, DurationBuckets>,
    /// Per transport: how to count its sessions, and the last count read.
    sessions: Mutex<Vec<(&'static str, SessionCount, Gauge)>>,
}

impl Default for HttpStats {
    fn default() -> Self {
        Self {
            open_connections: Gauge::default(),
            connections: Family::default(),
            sessions_refused: Family::default(),
            answers: Family::default(),
            durations: Family::new_with_constructor(DurationBuckets),
            sessions: Mutex::default(),
        }
    }
}

impl HttpStats {
    /// Counts a connection event.
    pub fn connection(&self, event: &'static str) {
        self.connections
            .get_or_create(&ConnectionEvent { event })
            .inc();
    }

    /// Registers how to read a transport's open session count, for `/metrics`.
    pub fn track_sessions(&self, transport: &'static str, count: SessionCount) {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((transport, count, Gauge::default()));
    }

    /// Counts a session refused at the cap.
    pub fn session_refused(&self, transport: &'static str) {
        self.sessions_refused
            .get_or_create(&Transport { transport })
            .inc();
    }

    /// Adds every counter to `registry` (prefix `netspy_`).
    pub fn register(&self, registry: &mut Registry) {
        // Every connection event is a series from the start, at 0 until it happens.
        for event in [
            "accepted",
            "refused",
            "evicted",
            "header_timeout",
            "idle_timeout",
            "write_timeout",
        ] {
            let _ = self.connections.get_or_create(&ConnectionEvent { event });
        }
        registry.register(
            "http_open_connections",
            "HTTP connections open now",
            self.open_connections.clone(),
        );
        registry.register(
            "http_connections",
            "HTTP connections by what happened to them (accepted, refused over the cap, evicted while idle, header, idle or write timeout)",
            self.connections.clone(),
        );
        registry.register(
            "http_answers",
            "HTTP answers by route and status code",
            self.answers.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its answer's head, by route and status code",
            self.durations.clone(),
        );
        let suppressed = Counter::<u64>::default();
        suppressed.inc_by(crate::logging::suppressed_lines());
        registry.register(
            "log_lines_suppressed",
            "Log lines left out because their callsite wrote too many in a short time",
            suppressed,
        );
        let open = Family::<Transport, Gauge>::default();
        for (transport, count, last) in self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            if let Some(count) = count() {
                last.set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            open.get_or_create(&Transport { transport }).set(last.get());
            let _ = self
                .sessions_refused
                .get_or_create(&Transport { transport });
        }
        registry.register("mcp_sessions", "MCP sessions open now, by transport", open);
        registry.register(
            "mcp_sessions_refused",
            "MCP sessions refused because the transport's session cap was reached",
            self.sessions_refused.clone(),
        );
    }
}

/// Counts and times every answer by route and status. Answers to the client's own mistakes or to
/// load (4xx, 503) are counted only; other 5xx, netspy's own failures, are also logged
/// (through the log's throttle).
pub async fn count_answers(
    Extension(stats): Extension<Arc<HttpStats>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", MatchedPath::as_str)
        .to_owned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status();
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!("{route} answered {status}");
    }
    let answered = Answered {
        route,
        status: status.as_u16(),
    };
    stats
        .durations
        .get_or_create(&answered)
        .observe(started.elapsed().as_secs_f64());
    stats.answers.get_or_create(&answered).inc();
    response
}
