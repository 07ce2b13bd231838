//! Generic event search (`/api/events`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ConnectionView, DnsView, DropView, EventKind, EventsRequest, OutcomeFilter, Query, QueryError,
    RetransmitView, dns::lookup_views, drops::drop_views, retransmits::retransmit_views,
};

/// One event of any kind (each carries its `type`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum EventView {
    /// A connect attempt.
    Connection(ConnectionView),
    /// A packet drop.
    PacketDrop(DropView),
    /// A host-name lookup.
    Dns(DnsView),
    /// A TCP retransmission.
    Retransmit(RetransmitView),
}

impl EventView {
    fn timestamp(&self) -> i64 {
        match self {
            Self::Connection(c) => c.timestamp,
            Self::PacketDrop(d) => d.timestamp,
            Self::Dns(l) => l.timestamp,
            Self::Retransmit(r) => r.timestamp,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Connection(_) => EventKind::Connection,
            Self::PacketDrop(_) => EventKind::PacketDrop,
            Self::Dns(_) => EventKind::Dns,
            Self::Retransmit(_) => EventKind::Retransmit,
        }
    }
}

/// Search results.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EventsAnswer {
    /// The most recent matching events, oldest first.
    pub events: Vec<EventView>,
    /// Events returned.
    pub count: usize,
    /// Events that matched before the limit applied.
    pub total_count: u64,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// The filters applied.
    pub filters: EventsFilters,
    /// True when the requested limit was above the daemon's maximum and was lowered.
    pub limit_capped: bool,
}

/// The filters an event search applied.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EventsFilters {
    /// Event type filter ("" = all).
    #[serde(rename = "type")]
    pub kind: String,
    /// pid filter (0 = none).
    pub pid: u32,
    /// Process name filter ("" = none).
    pub command: String,
    /// Window start, when one was given (absent otherwise: the original API declares a
    /// string here, never null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Window end, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Limit applied.
    pub limit: usize,
}

impl Query {
    /// Events of one kind, or connections and drops, filtered.
    pub fn events(&self, req: &EventsRequest) -> Result<EventsAnswer, QueryError> {
        let (limit, limit_capped) = self.limit(req.limit)?;
        let wanted = |kind| {
            req.kind.map_or(
                !matches!(kind, EventKind::Dns | EventKind::Retransmit),
                |k| k == kind,
            )
        };
        let (connections, drops, lookups, retransmits) = (
            wanted(EventKind::Connection),
            wanted(EventKind::PacketDrop),
            wanted(EventKind::Dns),
            wanted(EventKind::Retransmit),
        );
        // Drops have no TCP result: an outcome filter matches connections only.
        let outcome = req.outcome.map(OutcomeFilter::stored);
        let store = self.read();
        let scope = req.scope().resolve(&store, None)?;
        let mut events = Vec::new();
        let mut total = 0;
        if connections {
            let (views, matched) = Self::connection_views(&store, &scope.selection, limit, outcome);
            events.extend(views.into_iter().map(EventView::Connection));
            total += matched;
        }
        if drops && outcome.is_none() {
            let include_routine = req.include_routine.unwrap_or(false);
            let (views, matched, _) = drop_views(&store, &scope.selection, limit, include_routine);
            events.extend(views.into_iter().map(EventView::PacketDrop));
            total += matched;
        }
        // Lookups have no TCP result either.
        if lookups && outcome.is_none() {
            let (views, matched, _) = lookup_views(&store, &scope.selection, limit);
            events.extend(views.into_iter().map(EventView::Dns));
            total += matched;
        }
        // Nor retransmissions.
        if retransmits && outcome.is_none() {
            let (views, matched) = retransmit_views(&store, &scope.selection, limit);
            events.extend(views.into_iter().map(EventView::Retransmit));
            total += matched;
        }
        // Keep the most recent `limit` of both kinds together, oldest first.
        events.sort_by_key(EventView::timestamp);
        let excess = events.len().saturating_sub(limit);
        events.drain(..excess);
        Ok(EventsAnswer {
            count: events.len(),
            events,
            total_count: total,
            query_time: Utc::now(),
            filters: EventsFilters {
                kind: req.kind.map_or("", EventKind::name).to_owned(),
                pid: req.pid.unwrap_or(0),
                command: scope.command,
                since: req.since,
                until: req.until,
                limit,
            },
            limit_capped,
        })
    }
}
