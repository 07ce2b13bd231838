//! MCP over HTTP on the daemon's listener: Streamable HTTP at `/mcp` (rmcp) and the legacy
//! HTTP+SSE transport at `/sse` + `/messages` (`sse.rs`). The API's Host/Origin guard and
//! token cover them like every route; here each transport gets a session cap (503 beyond
//! it, counted), idle sessions expire, and every message passes the JSON-RPC gate
//! (`jsonrpc.rs`) before rmcp sees it.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use super::{NetspyMcp, jsonrpc, sse};
use crate::{
    api::{ErrorBody, HttpStats, read_body},
    insights::Insights,
    query::Telemetry,
};

/// Bounds of the MCP transports.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// Sessions open at once, per transport.
    pub max_sessions: usize,
    /// A Streamable HTTP session with no request for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_sessions: 256,
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// 503 with `Retry-After` for a session over the cap.
pub(super) fn too_many_sessions(transport: &str, max: usize) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(ErrorBody {
            error: format!(
                "too many open MCP sessions on {transport} (at most {max}); close one or try again later"
            ),
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// A JSON-RPC error answer over HTTP: 413 for a message too large, else 400.
fn fault_response(fault: &jsonrpc::Fault) -> Response {
    let status = if *fault == jsonrpc::Fault::too_large() {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, Json(fault.to_json())).into_response()
}

/// The cap, and the JSON-RPC gate, in front of rmcp's Streamable HTTP service.
#[derive(Clone)]
struct Gate {
    sessions: Arc<LocalSessionManager>,
    limits: SessionLimits,
    stats: Arc<HttpStats>,
}

async fn gate(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    // A POST without a session id starts one (initialize): refuse it at the cap.
    if !req.headers().contains_key("mcp-session-id")
        && gate.sessions.sessions.read().await.len() >= gate.limits.max_sessions
    {
        gate.stats.session_refused("streamable_http");
        return too_many_sessions("Streamable HTTP", gate.limits.max_sessions);
    }
    let (parts, body) = req.into_parts();
    match read_message(body).await {
        // rmcp parses the message again, from the same bytes.
        Ok((bytes, _)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(refused) => refused,
    }
}

/// One MCP message from a request body, through the JSON-RPC gate; or the answer refusing it.
pub(super) async fn read_message(
    body: Body,
) -> Result<(axum::body::Bytes, rmcp::model::ClientJsonRpcMessage), Response> {
    let bytes = match read_body(body, jsonrpc::MAX_MESSAGE_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(fault_response(&jsonrpc::Fault::too_large()));
        }
        Err(e) => return Err(e.into_response()),
    };
    match jsonrpc::parse(&bytes) {
        Ok(message) => Ok((bytes, message)),
        Err(fault) => Err(fault_response(&fault)),
    }
}

/// rmcp answers a session's DELETE with 202 Accepted, which the official Python SDK logs as
/// "Session termination failed: 202" (it expects 200 or 204). The session is closed by then,
/// so the answer is 204 No Content.
async fn session_ended(req: Request, next: Next) -> Response {
    let delete = req.method() == axum::http::Method::DELETE;
    let mut response = next.run(req).await;
    if delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

/// The MCP routes over `telemetry`, to merge into the daemon's router (whose guard and
/// token protect them). With `insights`, the AI tools use that endpoint.
pub fn router<T: Telemetry>(
    telemetry: T,
    insights: Option<Insights>,
    limits: SessionLimits,
    stats: Arc<HttpStats>,
    shutdown: CancellationToken,
) -> Router {
    let factory_telemetry = telemetry.clone();
    let factory_insights = insights.clone();
    let mut config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    config.cancellation_token = shutdown.child_token();
    config.max_request_body_bytes = jsonrpc::MAX_MESSAGE_BYTES;
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(limits.idle_timeout);
    manager.session_config.init_timeout = Some(Duration::from_secs(10));
    let manager = Arc::new(manager);
    let counted = manager.clone();
    stats.track_sessions(
        "streamable_http",
        Arc::new(move || counted.sessions.try_read().ok().map(|s| s.len())),
    );
    let streamable = StreamableHttpService::new(
        move || {
            Ok(NetspyMcp::new(factory_telemetry.clone()).with_insights(factory_insights.clone()))
        },
        manager.clone(),
        config,
    );
    let gate_state = Gate {
        sessions: manager,
        limits: limits.clone(),
        stats: stats.clone(),
    };
    let sessions = sse::Sessions::new(telemetry, insights, limits.max_sessions, stats, shutdown);
    let streamable = Router::new()
        .route_service("/mcp", streamable)
        .layer(axum::middleware::from_fn(session_ended))
        .layer(axum::middleware::from_fn_with_state(gate_state, gate));
    Router::new()
        .route("/sse", get(sse::connect::<T>))
        .route("/messages", post(sse::message::<T>))
        .with_state(sessions)
        .merge(streamable)
}
