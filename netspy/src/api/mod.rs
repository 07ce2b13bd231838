//! The REST API (axum): THE route table, thin handlers over the query layer, JSON errors,
//! Host/Origin and bearer-token protection, the OpenAPI document and docs page generated
//! from the same table and the types' schemas, and the hardened HTTP server loop.

mod auth;
mod connections;
mod docs;
mod error;
mod guard;
mod handlers;
mod metrics;
mod metrics_totals;
mod params;
mod server;
mod stats;
mod stream;
#[cfg(test)]
mod tests;

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use axum::{
    Extension, Router,
    http::Method,
    routing::{MethodRouter, get},
};
use schemars::{Schema, SchemaGenerator};

pub use self::{
    error::{ApiError, ErrorBody},
    guard::AccessPolicy,
    params::read_body,
    server::{ServerLimits, serve},
    stats::{ConnectionEvent, HttpStats},
    stream::Streams,
};
use crate::query::{EachQuestion, HEALTH_PATH, Health, Programs, Query, Question, each_question};

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// One endpoint: where, how, what it takes and gives, and its handler.
pub struct Endpoint {
    /// URL path.
    pub path: &'static str,
    /// Methods served.
    pub methods: &'static [Method],
    /// One line for people.
    pub summary: &'static str,
    /// Group in the docs.
    pub tag: &'static str,
    /// Request parameters' schema (query string for GET, JSON body for POST).
    pub request: Option<SchemaFn>,
    /// Success answer's schema.
    pub response: SchemaFn,
    handler: fn() -> MethodRouter<Query>,
}

fn schema<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

const GET: &[Method] = &[Method::GET];
const GET_POST: &[Method] = &[Method::GET, Method::POST];

/// The endpoint of a data question: GET with a query string or POST with a JSON body, at
/// the question's path, its schemas those of its request and answer.
fn asked<Q: Question>() -> Endpoint {
    Endpoint {
        path: Q::PATH,
        methods: GET_POST,
        summary: Q::SUMMARY,
        tag: Q::TAG,
        request: Some(schema::<Q::Request>),
        response: schema::<Q::Answer>,
        handler: handlers::question::<Q>,
    }
}

/// Every endpoint of the API: the daemon's status, then every data question.
pub static ENDPOINTS: LazyLock<Vec<Endpoint>> = LazyLock::new(|| {
    let mut endpoints = vec![
        Endpoint {
            path: HEALTH_PATH,
            methods: GET,
            summary: "Daemon health, per-probe hook status and event counters (503 until the probes are attached)",
            tag: "status",
            request: None,
            response: schema::<Health>,
            handler: || get(handlers::health),
        },
        Endpoint {
            path: "/api/programs",
            methods: GET,
            summary: "The kernel probes: hook in use, events received and lost",
            tag: "status",
            request: None,
            response: schema::<Programs>,
            handler: || get(handlers::programs),
        },
    ];
    struct Asked<'a>(&'a mut Vec<Endpoint>);
    impl EachQuestion for Asked<'_> {
        fn question<Q: Question>(&mut self) {
            self.0.push(asked::<Q>());
        }
    }
    each_question(&mut Asked(&mut endpoints));
    endpoints
});

/// How the API is protected and counted.
#[derive(Clone)]
pub struct ApiOptions {
    /// Bearer token every request must carry, when set.
    pub token: Option<Arc<str>>,
    /// Which Host and Origin headers are accepted.
    pub access: AccessPolicy,
    /// Counters shared with the server loop and `/metrics`.
    pub stats: Arc<HttpStats>,
    /// Time allowed to receive a request body.
    pub body_timeout: Duration,
    /// The event streams' cap and counters.
    pub streams: Arc<Streams>,
}

/// Event streams open at once by default.
pub const DEFAULT_MAX_STREAMS: usize = 64;

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            token: None,
            access: AccessPolicy::default(),
            stats: Arc::default(),
            body_timeout: Duration::from_secs(10),
            streams: Arc::new(Streams::new(DEFAULT_MAX_STREAMS)),
        }
    }
}

/// The whole API, plus `extra` routes (MCP) under the same protection: the Host/Origin
/// guard on every route, and with a token `Authorization: Bearer <token>` on every route.
pub fn router(query: Query, options: &ApiOptions, extra: Router) -> Router {
    let mut router = Router::new();
    for endpoint in ENDPOINTS.iter() {
        router = router.route(endpoint.path, (endpoint.handler)());
    }
    router = router
        .route(
            "/metrics",
            get(metrics::metrics)
                .layer(Extension(Arc::new(metrics_totals::ShownSeries::default()))),
        )
        // Not in ENDPOINTS: an endless answer is no OpenAPI operation (nor one to fuzz).
        .route("/api/stream", get(stream::stream))
        .route("/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::docs_page))
        .route("/docs/", get(docs::docs_page))
        .fallback(handlers::not_found);
    let mut router = router.with_state(query).merge(extra);
    if let Some(token) = options.token.as_deref() {
        router = router.layer(axum::middleware::from_fn_with_state(
            auth::Token::new(token),
            auth::require_token,
        ));
    }
    // Outermost last: traced, counted, JSON errors, then the guard before anything else.
    router
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(options.access.clone()),
            guard::guard,
        ))
        .layer(tower_http::timeout::RequestBodyDeadlineLayer::new(
            options.body_timeout,
        ))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn(stats::count_answers))
        .layer(Extension(options.stats.clone()))
        .layer(Extension(options.streams.clone()))
        .layer(
            // Client-caused answers are counted, not logged (a flood must not flood the log).
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(
                    tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::DEBUG),
                )
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                )
                .on_failure(
                    tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
                ),
        )
}
