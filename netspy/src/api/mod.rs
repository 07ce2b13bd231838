//! The REST API (axum): THE route table, thin handlers over the query layer, JSON errors,
//! bearer-token protection, and the OpenAPI document and docs page generated from the same
//! table and the types' schemas.

mod auth;
mod docs;
mod error;
mod handlers;
mod metrics;
mod params;

use std::sync::Arc;

use axum::{
    Router,
    http::Method,
    routing::{MethodRouter, get},
};
use schemars::{Schema, SchemaGenerator};

pub use self::error::{ApiError, ErrorBody};
use crate::query::{
    Analysis, ConnectionList, ConnectionSummary, DropList, DropSummary, EventsAnswer,
    EventsRequest, Health, ListRequest, Programs, Query, SummaryRequest,
};

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

/// Every endpoint of the API.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        path: "/health",
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
    Endpoint {
        path: "/api/events",
        methods: GET_POST,
        summary: "Search events of both kinds by type, pid, process name, time window and outcome",
        tag: "events",
        request: Some(schema::<EventsRequest>),
        response: schema::<EventsAnswer>,
        handler: || get(handlers::events).post(handlers::events),
    },
    Endpoint {
        path: "/api/connection-summary",
        methods: GET_POST,
        summary: "How many connect attempts a process made over a window, with their TCP results",
        tag: "connections",
        request: Some(schema::<SummaryRequest>),
        response: schema::<ConnectionSummary>,
        handler: || get(handlers::connection_summary).post(handlers::connection_summary),
    },
    Endpoint {
        path: "/api/list-connections",
        methods: GET_POST,
        summary: "The most recent connect attempts, grouped by pid",
        tag: "connections",
        request: Some(schema::<ListRequest>),
        response: schema::<ConnectionList>,
        handler: || get(handlers::list_connections).post(handlers::list_connections),
    },
    Endpoint {
        path: "/api/analyze-patterns",
        methods: GET_POST,
        summary: "Top destinations, protocols, ports, results, errors and processes over a window",
        tag: "connections",
        request: Some(schema::<SummaryRequest>),
        response: schema::<Analysis>,
        handler: || get(handlers::analyze_patterns).post(handlers::analyze_patterns),
    },
    Endpoint {
        path: "/api/packet-drop-summary",
        methods: GET_POST,
        summary: "How many packets of a process were dropped over a window, by reason (routine drops apart)",
        tag: "packet_drops",
        request: Some(schema::<SummaryRequest>),
        response: schema::<DropSummary>,
        handler: || get(handlers::drop_summary).post(handlers::drop_summary),
    },
    Endpoint {
        path: "/api/list-packet-drops",
        methods: GET_POST,
        summary: "The most recent packet drops, grouped by owning pid (routine drops only on request)",
        tag: "packet_drops",
        request: Some(schema::<ListRequest>),
        response: schema::<DropList>,
        handler: || get(handlers::list_drops).post(handlers::list_drops),
    },
];

/// The whole API, plus `extra` routes (MCP) under the same protection. With a token, every
/// route needs `Authorization: Bearer <token>`.
pub fn router(query: Query, token: Option<Arc<str>>, extra: Router) -> Router {
    let mut router = Router::new();
    for endpoint in ENDPOINTS {
        router = router.route(endpoint.path, (endpoint.handler)());
    }
    router = router
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::docs_page))
        .route("/docs/", get(docs::docs_page))
        .fallback(handlers::not_found);
    let mut router = router.with_state(query).merge(extra);
    if let Some(token) = token {
        router = router.layer(axum::middleware::from_fn_with_state(
            auth::Token::new(&token),
            auth::require_token,
        ));
    }
    router
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
