//! `Telemetry`: the questions MCP tools and the CLI ask, with two sides: the in-process
//! [`Query`] (inside the daemon) and the REST client of a daemon (`crate::client::Client`),
//! so unprivileged processes answer the same tools with the same logic.

use std::future::Future;

use super::{
    Analysis, ConnectionList, ConnectionSummary, DnsList, DropList, DropSummary, Health,
    ListRequest, Query, QueryError, RetransmitList, RetransmitSummary, SummaryRequest,
};

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
    /// Connect attempts over a window.
    fn connection_summary(
        &self,
        req: SummaryRequest,
    ) -> impl Future<Output = Result<ConnectionSummary, TelemetryError>> + Send;
    /// Recent connect attempts.
    fn list_connections(
        &self,
        req: ListRequest,
    ) -> impl Future<Output = Result<ConnectionList, TelemetryError>> + Send;
    /// Connection patterns over a window.
    fn analyze_patterns(
        &self,
        req: SummaryRequest,
    ) -> impl Future<Output = Result<Analysis, TelemetryError>> + Send;
    /// Packet drops over a window.
    fn drop_summary(
        &self,
        req: SummaryRequest,
    ) -> impl Future<Output = Result<DropSummary, TelemetryError>> + Send;
    /// Recent packet drops.
    fn list_drops(
        &self,
        req: ListRequest,
    ) -> impl Future<Output = Result<DropList, TelemetryError>> + Send;
    /// Recent host-name lookups.
    fn list_dns(
        &self,
        req: ListRequest,
    ) -> impl Future<Output = Result<DnsList, TelemetryError>> + Send;
    /// TCP retransmissions over a window.
    fn retransmit_summary(
        &self,
        req: SummaryRequest,
    ) -> impl Future<Output = Result<RetransmitSummary, TelemetryError>> + Send;
    /// Recent TCP retransmissions.
    fn list_retransmits(
        &self,
        req: ListRequest,
    ) -> impl Future<Output = Result<RetransmitList, TelemetryError>> + Send;
}

impl Telemetry for Query {
    async fn health(&self) -> Result<Health, TelemetryError> {
        Ok(Query::health(self))
    }

    async fn connection_summary(
        &self,
        req: SummaryRequest,
    ) -> Result<ConnectionSummary, TelemetryError> {
        Ok(self.answer(move |q| q.connection_summary(&req)).await?)
    }

    async fn list_connections(&self, req: ListRequest) -> Result<ConnectionList, TelemetryError> {
        Ok(self.answer(move |q| q.list_connections(&req)).await?)
    }

    async fn analyze_patterns(&self, req: SummaryRequest) -> Result<Analysis, TelemetryError> {
        Ok(self.answer(move |q| q.analyze_patterns(&req)).await?)
    }

    async fn drop_summary(&self, req: SummaryRequest) -> Result<DropSummary, TelemetryError> {
        Ok(self.answer(move |q| q.drop_summary(&req)).await?)
    }

    async fn list_drops(&self, req: ListRequest) -> Result<DropList, TelemetryError> {
        Ok(self.answer(move |q| q.list_drops(&req)).await?)
    }

    async fn list_dns(&self, req: ListRequest) -> Result<DnsList, TelemetryError> {
        Ok(self.answer(move |q| q.list_dns(&req)).await?)
    }

    async fn retransmit_summary(
        &self,
        req: SummaryRequest,
    ) -> Result<RetransmitSummary, TelemetryError> {
        Ok(self.answer(move |q| q.retransmit_summary(&req)).await?)
    }

    async fn list_retransmits(&self, req: ListRequest) -> Result<RetransmitList, TelemetryError> {
        Ok(self.answer(move |q| q.list_retransmits(&req)).await?)
    }
}
