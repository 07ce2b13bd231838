//! MCP over HTTP on the daemon's listener: Streamable HTTP at `/mcp` (rmcp) and the legacy
//! HTTP+SSE transport at `/sse` + `/messages` (`sse.rs`), behind one Host/Origin guard
//! (DNS-rebinding protection, 403 for foreign origins, as the MCP spec requires).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use super::{NetspyMcp, sse};
use crate::{api::ErrorBody, insights::Insights, query::Telemetry};

/// Largest MCP request body accepted.
pub const MAX_MCP_BODY_BYTES: usize = 256 * 1024;

/// Which `Host` and `Origin` headers MCP requests may carry.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    /// Only loopback host names (the daemon listens on loopback).
    loopback_hosts_only: bool,
    /// Browser origins allowed besides loopback ones (`https://app.example.com`).
    extra_origins: Vec<String>,
}

impl OriginPolicy {
    /// The policy for a daemon listening on `listen`: loopback listeners accept loopback host
    /// names only (a DNS-rebinding page cannot reach them); every listener accepts loopback
    /// origins and the `extra_origins`.
    pub fn for_listen(listen: SocketAddr, extra_origins: Vec<String>) -> Self {
        Self {
            loopback_hosts_only: listen.ip().is_loopback(),
            extra_origins,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        !self.loopback_hosts_only || is_loopback_name(strip_port(host))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self
            .extra_origins
            .iter()
            .any(|o| o.trim_end_matches('/') == origin)
        {
            return true;
        }
        match origin.split_once("://") {
            Some(("http" | "https", authority)) => is_loopback_name(strip_port(authority)),
            _ => false,
        }
    }
}

/// `host:port` or `[v6]:port` without the port.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn guard(State(policy): State<Arc<OriginPolicy>>, req: Request, next: Next) -> Response {
    match refusal(&policy, req.headers()) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

fn refusal(policy: &OriginPolicy, headers: &header::HeaderMap) -> Option<Response> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if let Some(host) = header(header::HOST)
        && !policy.host_allowed(host)
    {
        return Some(forbidden(format!(
            "Host {host:?} is not allowed: this server only answers to localhost"
        )));
    }
    match header(header::ORIGIN) {
        Some(origin) if !policy.origin_allowed(origin) => {
            Some(forbidden(format!("Origin {origin:?} is not allowed")))
        }
        _ => None,
    }
}

fn forbidden(message: String) -> Response {
    (StatusCode::FORBIDDEN, Json(ErrorBody { error: message })).into_response()
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

/// The MCP routes over `telemetry`, to merge into the daemon's router.
/// With `insights`, the AI tools use that endpoint.
pub fn router<T: Telemetry>(
    telemetry: T,
    insights: Option<Insights>,
    policy: OriginPolicy,
    shutdown: CancellationToken,
) -> Router {
    let factory_telemetry = telemetry.clone();
    let factory_insights = insights.clone();
    let mut config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    config.cancellation_token = shutdown.child_token();
    config.max_request_body_bytes = MAX_MCP_BODY_BYTES;
    let streamable = StreamableHttpService::new(
        move || {
            Ok(NetspyMcp::new(factory_telemetry.clone()).with_insights(factory_insights.clone()))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let sessions = sse::Sessions::new(telemetry, insights, shutdown);
    let streamable = Router::new()
        .fallback_service(streamable)
        .layer(axum::middleware::from_fn(session_ended));
    Router::new()
        .nest("/mcp", streamable)
        .route("/sse", get(sse::connect::<T>))
        .route("/messages", post(sse::message::<T>))
        .with_state(sessions)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(policy),
            guard,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_policy_rejects_foreign_hosts_and_origins() {
        let policy = OriginPolicy::for_listen(
            "127.0.0.1:8080".parse().unwrap(),
            vec!["https://ok.example".into()],
        );
        assert!(policy.host_allowed("localhost:8080"));
        assert!(policy.host_allowed("127.0.0.1:8080"));
        assert!(policy.host_allowed("[::1]:8080"));
        assert!(!policy.host_allowed("evil.example:8080"));
        assert!(policy.origin_allowed("http://localhost:6274"));
        assert!(policy.origin_allowed("http://127.0.0.1"));
        assert!(policy.origin_allowed("https://ok.example"));
        assert!(!policy.origin_allowed("https://evil.example"));
        assert!(!policy.origin_allowed("null"));
        let public = OriginPolicy::for_listen("0.0.0.0:8080".parse().unwrap(), vec![]);
        assert!(public.host_allowed("netspy.internal:8080"));
        assert!(!public.origin_allowed("https://evil.example"));
    }
}
