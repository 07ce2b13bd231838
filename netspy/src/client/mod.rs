//! The typed REST client of a netspy daemon. It implements [`Telemetry`], so the MCP server
//! and the CLI answer the same questions from an unprivileged process.
//!
//! ```no_run
//! # async fn demo() -> Result<(), netspy::query::TelemetryError> {
//! use netspy::{client::Client, query::{SummarizeConnections, SummaryRequest, Telemetry}};
//! let daemon = Client::new("http://localhost:8080", None)?;
//! let summary = daemon
//!     .ask::<SummarizeConnections>(SummaryRequest { command: Some("curl".into()), ..Default::default() })
//!     .await?;
//! println!("curl made {} connection attempts in the last minute", summary.count);
//! # Ok(()) }
//! ```

mod stream;

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::query::{
    FieldNames, HEALTH_PATH, Health, Question, Scoped as _, Telemetry, TelemetryError,
};

/// Default address of the daemon.
pub const DEFAULT_SERVER: &str = "http://localhost:8080";
pub use self::stream::StreamItem;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A daemon at a base URL.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the daemon at `base` (`http://host:port`), sending `token` as a bearer
    /// token when given.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, TelemetryError> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.contains("://") {
            return Err(TelemetryError::BadRequest(format!(
                "invalid server URL {base:?}: write it with its scheme, http://{base}"
            )));
        }
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| TelemetryError::BadRequest(format!("invalid server URL {base:?}: {e}")))?;
        if parsed.scheme() != "http" {
            return Err(TelemetryError::BadRequest(format!(
                "server URL {base:?}: only http:// is supported (the daemon serves plain HTTP; put TLS in front of it with a proxy)"
            )));
        }
        if let Some(token) = &token {
            crate::logging::register_secret(token);
        }
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| TelemetryError::Protocol(format!("building the HTTP client: {e}")))?;
        Ok(Self { http, base, token })
    }

    /// The daemon's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, TelemetryError> {
        let (status, text) = self.exchange(path, body).await?;
        self.answer(path, status, &text)
    }

    /// Sends a request; the answer's status and body.
    async fn exchange(
        &self,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<(reqwest::StatusCode, String), TelemetryError> {
        let url = format!("{}{path}", self.base);
        let mut request = match body {
            Some(body) => self.http.post(&url).json(body),
            None => self.http.get(&url),
        };
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        Ok((status, text))
    }

    /// The answer to a request of `path`, or the error its status says.
    fn answer<T: DeserializeOwned>(
        &self,
        path: &str,
        status: reqwest::StatusCode,
        text: &str,
    ) -> Result<T, TelemetryError> {
        let url = format!("{}{path}", self.base);
        if status.is_success() || (path == HEALTH_PATH && status.as_u16() == 503) {
            return serde_json::from_str(text).map_err(|e| {
                TelemetryError::Protocol(format!("unexpected answer from {url}: {e}"))
            });
        }
        Err(self.refusal(&url, status, text))
    }

    /// The error of an answer that is not a success, in the daemon's words when it gave any.
    fn refusal(&self, url: &str, status: reqwest::StatusCode, text: &str) -> TelemetryError {
        let message = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| format!("HTTP {status}"));
        match status.as_u16() {
            401 => TelemetryError::Unauthorized(format!(
                "the daemon at {} refused the request: {message}. Set NETSPY_TOKEN (or --token) to its token",
                self.base
            )),
            503 => TelemetryError::Unavailable(message),
            // Every netspy daemon serves these paths and methods.
            404 | 405 | 501 => TelemetryError::Protocol(format!(
                "{} is not a netspy daemon: {url} answered {message}",
                self.base
            )),
            400..=499 => TelemetryError::BadRequest(message),
            _ => TelemetryError::Protocol(format!("{url}: {message}")),
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> TelemetryError {
        let why = if e.is_timeout() {
            format!("no answer within {}s", TIMEOUT.as_secs())
        } else if e.is_connect() {
            "connection refused".to_owned()
        } else {
            e.to_string()
        };
        TelemetryError::Unreachable(format!(
            "the netspy daemon is not reachable at {base} ({why}). Start it with `sudo netspy daemon` \
             and check it with `curl {base}/health`",
            base = self.base
        ))
    }
}

/// Requests are checked here by the query layer's own rules before they are sent, so a
/// mistake gets the daemon's words (not a transport error about the request's size).
impl Telemetry for Client {
    async fn health(&self) -> Result<Health, TelemetryError> {
        self.call(HEALTH_PATH, None::<&()>).await
    }

    async fn ask<Q: Question>(&self, req: Q::Request) -> Result<Q::Answer, TelemetryError> {
        req.check(FieldNames::REST)?;
        let (status, text) = self.exchange(Q::PATH, Some(&req)).await?;
        if status == reqwest::StatusCode::NOT_FOUND
            && let Some(answer) = Q::stand_in(self, &req).await
        {
            return answer;
        }
        self.answer(Q::PATH, status, &text)
    }
}
