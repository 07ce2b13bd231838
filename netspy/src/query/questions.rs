//! The data questions, each written once: its REST path, its request and answer types, and
//! the query-layer method that answers it. The REST route table, the REST client and the MCP
//! tools all take them from here, so a new question is one entry below.

use std::future::Future;

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    Analysis, ConnectionList, ConnectionSummary, DnsList, DropList, DropSummary, EventsAnswer,
    EventsRequest, FieldNames, ListRequest, Query, QueryError, RetransmitList, RetransmitSummary,
    Scope, SummaryRequest, Telemetry, TelemetryError, check_limit,
};

/// Path of the daemon's health (not a data question: it answers before the probes attach).
pub const HEALTH_PATH: &str = "/health";

/// A request that carries the process and window filter.
pub trait Scoped {
    /// Its process and window filter.
    fn scope(&self) -> Scope;

    /// How many events it asks for, when it is a list.
    fn limit(&self) -> Option<i64>;

    /// Every rule that needs no history (the same the daemon applies), a refusal naming
    /// the fields as `names` does: a client refuses what the daemon would, in its words.
    fn check(&self, names: FieldNames) -> Result<(), QueryError> {
        // In the daemon's order, so that two mistakes get the same refusal everywhere.
        check_limit(self.limit(), names)?;
        self.scope().check(names)
    }
}

/// A question about the history.
pub trait Question: Send + Sync + 'static {
    /// Where the REST API serves it (GET with a query string, POST with a JSON body).
    const PATH: &'static str;
    /// What it takes.
    type Request: Scoped + Serialize + DeserializeOwned + JsonSchema + Clone + Send + Sync + 'static;
    /// What it gives.
    type Answer: Serialize + DeserializeOwned + JsonSchema + Send + 'static;

    /// The answer from the store.
    fn answer(query: &Query, req: &Self::Request) -> Result<Self::Answer, QueryError>;

    /// For a daemon that does not serve [`Self::PATH`] (404): the answer made from other
    /// questions, when it can be. None by default.
    fn stand_in<T: Telemetry>(
        _telemetry: &T,
        _req: &Self::Request,
    ) -> impl Future<Output = Option<Result<Self::Answer, TelemetryError>>> + Send {
        std::future::ready(None)
    }
}

/// Declares each question: a unit type, its path, request, answer and answering method.
macro_rules! questions {
    ($(
        $(#[$meta:meta])*
        $name:ident: $path:literal, $request:ty => $answer:ty, $method:ident;
    )*) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name;

        impl Question for $name {
            const PATH: &'static str = $path;
            type Request = $request;
            type Answer = $answer;

            fn answer(query: &Query, req: &$request) -> Result<$answer, QueryError> {
                query.$method(req)
            }
        }
    )*};
}

questions! {
    /// Events of every kind by type, process, window and outcome.
    SearchEvents: "/api/events", EventsRequest => EventsAnswer, events;
    /// Connect attempts over a window, with their TCP results.
    SummarizeConnections: "/api/connection-summary", SummaryRequest => ConnectionSummary, connection_summary;
    /// The most recent connect attempts.
    ListConnections: "/api/list-connections", ListRequest => ConnectionList, list_connections;
    /// Packet drops over a window, by reason.
    SummarizeDrops: "/api/packet-drop-summary", SummaryRequest => DropSummary, drop_summary;
    /// The most recent packet drops.
    ListDrops: "/api/list-packet-drops", ListRequest => DropList, list_drops;
    /// The most recent host-name lookups.
    ListLookups: "/api/list-dns", ListRequest => DnsList, list_dns;
    /// TCP retransmissions over a window, by process and connection.
    SummarizeRetransmits: "/api/retransmit-summary", SummaryRequest => RetransmitSummary, retransmit_summary;
    /// The most recent TCP retransmissions.
    ListRetransmits: "/api/list-retransmits", ListRequest => RetransmitList, list_retransmits;
}

/// How many connect events are listed to compute an analysis a server does not serve
/// (netspy's own default cap of a list).
const LISTED_FOR_ANALYSIS: i64 = 10_000;

/// Top destinations, protocols, ports, results, errors and processes over a window.
#[derive(Clone, Copy, Debug)]
pub struct AnalyzePatterns;

impl Question for AnalyzePatterns {
    const PATH: &'static str = "/api/analyze-patterns";
    type Request = SummaryRequest;
    type Answer = Analysis;

    fn answer(query: &Query, req: &SummaryRequest) -> Result<Analysis, QueryError> {
        query.analyze_patterns(req)
    }

    /// The original ebpf-server has no analysis: it is computed from the connect events it
    /// lists, and the answer says so.
    fn stand_in<T: Telemetry>(
        telemetry: &T,
        req: &SummaryRequest,
    ) -> impl Future<Output = Option<Result<Analysis, TelemetryError>>> + Send {
        let list = ListRequest {
            limit: Some(LISTED_FOR_ANALYSIS),
            ..ListRequest::scoped(req.scope())
        };
        let req = req.clone();
        let telemetry = telemetry.clone();
        async move {
            Some(
                telemetry
                    .ask::<ListConnections>(list)
                    .await
                    .map(|list| Analysis::of_listed(&req, &list)),
            )
        }
    }
}
