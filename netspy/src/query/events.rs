//! Generic event search (`/api/events`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    EventKind, EventView, EventsRequest, OutcomeFilter, Query, QueryError, kinds::Filters,
};

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
    /// TCP result filter, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeFilter>,
    /// systemd unit filter, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Container filter, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// True when routine drops were asked for (absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_routine: bool,
}

impl Query {
    /// Events of one kind, or of the kinds searched by default, filtered. An `outcome` with
    /// a `type` that has no TCP result answers empty, at once (the stream, which would wait
    /// for ever, refuses it instead); the schema allows the pair, so it is answered 200.
    pub fn events(&self, req: &EventsRequest) -> Result<EventsAnswer, QueryError> {
        let (limit, limit_capped) = self.limit(req.limit)?;
        let store = self.read();
        let scope = req.scope().resolve(&store, None)?;
        let filters = Filters::new(&store, req.outcome, req.include_routine);
        let mut events = Vec::new();
        let mut total = 0;
        for &kind in EventKind::ALL {
            if kind.wanted(req.kind, req.outcome) {
                let newest = kind.newest(&store, &scope.selection, limit, &filters);
                events.extend(newest.views);
                total += newest.matched;
            }
        }
        // Keep the most recent `limit` of the kinds together, oldest first.
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
                outcome: req.outcome,
                unit: req.unit.clone(),
                container: req.container.clone(),
                include_routine: req.include_routine.unwrap_or(false),
            },
            limit_capped,
        })
    }
}
