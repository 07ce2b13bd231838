//! The data questions, each written once: its REST path, its request and answer types, the
//! query-layer method that answers it, and its line in the API docs. The REST route table,
//! the OpenAPI document, the REST client and the MCP tools all take them from [`Question`], so
//! a new question is one `questions!` entry: below for the layers' questions, in its kind's
//! `answers.rs` for a kind kept whole ([`each_question`] walks both).

use std::future::Future;

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    Analysis, ConnectionList, ConnectionSummary, DropList, DropSummary, EventsAnswer,
    EventsRequest, FieldNames, ListRequest, Query, QueryError, Scope, SummaryRequest, Telemetry,
    TelemetryError, check_limit,
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
    /// What it answers, in one line for people (the API docs).
    const SUMMARY: &'static str;
    /// Its group in the API docs.
    const TAG: &'static str;
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

/// Something done for every question, in the order the API lists them ([`each_question`]).
pub trait EachQuestion {
    /// Done for question `Q`.
    fn question<Q: Question>(&mut self);
}

/// Declares questions: for each a unit type, its path, request, answer, answering method and
/// (optionally) its stand-in, the API's one-line summary and group; and `$each`, which does
/// something for each of them in order (the layers' questions here, a kind's in its
/// answers; [`each_question`] does every one).
macro_rules! questions {
    (each: $each:ident; $(
        $(#[$meta:meta])*
        $name:ident: $path:literal, $request:ty => $answer:ty, $method:ident
            $(, stand_in: $stand_in:path)?;
        summary: $summary:literal, in $tag:literal;
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Copy, Debug)]
            pub struct $name;

            impl $crate::query::Question for $name {
                const PATH: &'static str = $path;
                const SUMMARY: &'static str = $summary;
                const TAG: &'static str = $tag;
                type Request = $request;
                type Answer = $answer;

                fn answer(
                    query: &$crate::query::Query,
                    req: &$request,
                ) -> Result<$answer, $crate::query::QueryError> {
                    query.$method(req)
                }

                $(
                    fn stand_in<T: $crate::query::Telemetry>(
                        telemetry: &T,
                        req: &$request,
                    ) -> impl std::future::Future<
                        Output = Option<Result<$answer, $crate::query::TelemetryError>>,
                    > + Send {
                        $stand_in(telemetry, req)
                    }
                )?
            }
        )*

        /// Does `each` for each of these questions, in order.
        pub(crate) fn $each(each: &mut impl $crate::query::EachQuestion) {
            $(each.question::<$name>();)*
        }
    };
}

pub(crate) use questions;

/// Does `each` for every question, in the order the API lists them: the layers' questions,
/// then those of the kinds kept whole.
pub fn each_question(each: &mut impl EachQuestion) {
    each_layer_question(each);
    crate::kinds::each_question(each);
}

questions! {
    each: each_layer_question;
    /// Events of every kind by type, process, window and outcome.
    SearchEvents: "/api/events", EventsRequest => EventsAnswer, events;
        summary: "Search events by type, pid, process name, time window and outcome", in "events";
    /// Connect attempts over a window, with their TCP results.
    SummarizeConnections: "/api/connection-summary", SummaryRequest => ConnectionSummary, connection_summary;
        summary: "How many connect attempts a process made over a window, with their TCP results", in "connections";
    /// The most recent connect attempts.
    ListConnections: "/api/list-connections", ListRequest => ConnectionList, list_connections;
        summary: "The most recent connect attempts, grouped by pid", in "connections";
    /// Top destinations, protocols, ports, results, errors and processes over a window.
    AnalyzePatterns: "/api/analyze-patterns", SummaryRequest => Analysis, analyze_patterns,
        stand_in: analysis_from_the_list;
        summary: "Top destinations, protocols, ports, results, errors and processes over a window", in "connections";
    /// Packet drops over a window, by reason.
    SummarizeDrops: "/api/packet-drop-summary", SummaryRequest => DropSummary, drop_summary;
        summary: "How many packets of a process were dropped over a window, by reason (routine drops apart)", in "packet_drops";
    /// The most recent packet drops.
    ListDrops: "/api/list-packet-drops", ListRequest => DropList, list_drops;
        summary: "The most recent packet drops, grouped by owning pid (routine drops only on request)", in "packet_drops";
}

/// How many connect events are listed to compute an analysis a server does not serve
/// (netspy's own default cap of a list).
const LISTED_FOR_ANALYSIS: i64 = 10_000;

/// The original ebpf-server has no analysis: it is computed from the connect events it
/// lists, and the answer says so.
fn analysis_from_the_list<T: Telemetry>(
    telemetry: &T,
    req: &SummaryRequest,
) -> impl Future<Output = Option<Result<Analysis, TelemetryError>>> + Send + use<T> {
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
