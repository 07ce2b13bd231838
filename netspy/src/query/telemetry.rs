//! `Telemetry`: the questions MCP tools and the CLI ask, with two sides: the in-process
//! [`Query`] (inside the daemon) and the REST client of a daemon (`crate::client::Client`),
//! so unprivileged processes answer the same tools with the same logic.

use std::future::Future;

use super::{Health, Query, QueryError, Question};

/// Why a question got no answer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TelemetryError {
    /// The question is wrong (bad filter, bad window): the text says how.
    #[error("{0}")]
    BadRequest(String),
    /// The daemon is up but its probes are not attached yet.
    #[error("{0}")]
    Unavailable(String),
    /// The daemon cannot be reached: the text says how to start and check it.
    #[error("{0}")]
    Unreachable(String),
    /// The daemon wants a (different) bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// The daemon answered something unexpected.
    #[error("{0}")]
    Protocol(String),
}

impl From<QueryError> for TelemetryError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => Self::BadRequest(m),
            QueryError::Unavailable(m) | QueryError::Overloaded(m) => Self::Unavailable(m),
        }
    }
}

/// Every question about the history, answered in-process or by a remote daemon.
pub trait Telemetry: Clone + Send + Sync + 'static {
    /// Daemon health.
    fn health(&self) -> impl Future<Output = Result<Health, TelemetryError>> + Send;
    /// The answer to a data question (a [`Question`]).
    fn ask<Q: Question>(
        &self,
        req: Q::Request,
    ) -> impl Future<Output = Result<Q::Answer, TelemetryError>> + Send;
}

impl Telemetry for Query {
    async fn health(&self) -> Result<Health, TelemetryError> {
        Ok(Query::health(self))
    }

    async fn ask<Q: Question>(&self, req: Q::Request) -> Result<Q::Answer, TelemetryError> {
        Ok(self.answer(move |q| Q::answer(q, &req)).await?)
    }
}
