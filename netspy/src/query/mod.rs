//! The query layer: every question the REST API (and later MCP and the CLI) can ask, answered
//! from the store in one place. Request and answer types derive serde + JsonSchema, so the
//! same struct is the REST body, the MCP arguments and the OpenAPI schema.

mod analysis;
mod cgroup;
mod connections;
mod coverage;
mod drops;
mod events;
#[cfg(test)]
pub(crate) mod fixtures;
mod gate;
mod kinds;
mod questions;
mod request;
mod scope;
mod status;
mod stream;
mod telemetry;

use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use self::{
    analysis::{Analysis, Count, Latency, NONE},
    cgroup::CgroupView,
    connections::{ConnectionList, ConnectionSummary, ConnectionView},
    coverage::Coverage,
    drops::{DropList, DropSummary, DropView, ReasonCount, category, is_routine},
    events::{EventsAnswer, EventsFilters},
    gate::{Gate, QueryLimits, RETRY_AFTER_SECONDS, ShedReason},
    kinds::{EventKind, EventView},
    questions::{
        AnalyzePatterns, EachQuestion, HEALTH_PATH, ListConnections, ListDrops, Question, Scoped,
        SearchEvents, SummarizeConnections, SummarizeDrops, each_question,
    },
    request::{EventsRequest, ListRequest, OutcomeFilter, Scope, StreamRequest, SummaryRequest},
    scope::{FieldNames, MAX_DURATION_SECONDS, MAX_NAME_CHARS, NameFilter, check_limit},
    status::{EventCounters, Health, ProbeSource, ProbeState, ProgramInfo, Programs, Status},
    stream::{Cursor, HOLD_NS, StreamStep},
    telemetry::{Telemetry, TelemetryError},
};
pub(crate) use self::{
    kinds::{Filters, Listed, Newest, answered_kinds, bounds_of, newest, numbered},
    questions::questions,
};
pub use crate::store::OutcomeCounts;
use crate::{events::Event, store::Store};

/// Events the store takes under one hold of its write lock: a query waits for at most one
/// such run (~0.1-0.3 ms), even when the writer is short of CPU under load.
const INGEST_RUN: usize = 256;

/// How far back a question looks when it names no window, in seconds: the same for
/// summaries, analyses and lists, so that one never shows what another says is not there.
pub const DEFAULT_WINDOW_SECONDS: i64 = 60;

/// A list's views by pid (the key as a string, as the original API had it), each pid's in
/// the order given.
pub(crate) fn by_pid<V>(
    views: Vec<V>,
    pid: impl Fn(&V) -> u32,
) -> std::collections::BTreeMap<String, Vec<V>> {
    let mut grouped: std::collections::BTreeMap<String, Vec<V>> = Default::default();
    for view in views {
        grouped
            .entry(pid(&view).to_string())
            .or_default()
            .push(view);
    }
    grouped
}

/// Default and maximum number of events a list returns.
pub const DEFAULT_LIMIT: usize = 100;

/// A question that cannot be answered as asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    /// The request is wrong; the text says how (shown to the client).
    #[error("{0}")]
    BadRequest(String),
    /// The daemon is not ready to answer (probes still loading).
    #[error("{0}")]
    Unavailable(String),
    /// Too much query work already (queue full or deadline passed): ask again shortly.
    #[error("{0}")]
    Overloaded(String),
}

/// The store, the probe status, and the limits, behind one handle that REST and MCP share.
#[derive(Clone)]
pub struct Query {
    store: Arc<RwLock<Store>>,
    status: Arc<Status>,
    max_list: usize,
    gate: Arc<Gate>,
}

impl Query {
    /// A query handle on `store` with the default query limits. `max_list` caps every list.
    pub fn new(store: Store, status: Arc<Status>, max_list: usize) -> Self {
        Self {
            store: Arc::new(RwLock::new(store)),
            status,
            max_list: max_list.max(1),
            gate: Arc::new(Gate::new(QueryLimits::default())),
        }
    }

    /// The same handle with other query limits.
    pub fn with_limits(mut self, limits: QueryLimits) -> Self {
        self.gate = Arc::new(Gate::new(limits));
        self
    }

    /// The gate data questions pass (its limits and counters).
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// Answers a data question through the gate: once the probes are attached, on a query
    /// thread, within the query limits.
    pub async fn answer<T: Send + 'static>(
        &self,
        question: impl FnOnce(&Query) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        self.ensure_ready()?;
        let query = self.clone();
        self.gate.run(move || question(&query)).await
    }

    /// The probe status.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// Counts since the start by process, for `/metrics` (a copy taken under the read
    /// lock: a few hundred numbers at most).
    pub fn totals(&self) -> crate::store::TotalsSnapshot {
        self.read().totals()
    }

    /// The store, for reading.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read()
    }

    /// The store, for writing (the daemon's store writer).
    pub fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write()
    }

    /// Adds events to the store a short run at a time, handing the lock to waiting queries
    /// between runs, so ingest and queries take turns in sub-millisecond steps.
    pub fn ingest(&self, events: Vec<Event>) {
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let mut store = self.store.write();
            for event in events.by_ref().take(INGEST_RUN) {
                store.ingest(event);
            }
            RwLockWriteGuard::unlock_fair(store);
        }
    }

    /// Data questions are answered once the probes are attached (503 before, as the
    /// original API did).
    pub fn ensure_ready(&self) -> Result<(), QueryError> {
        match self.status.is_ready() {
            true => Ok(()),
            false => Err(QueryError::Unavailable(
                "netspy is starting: its probes are not attached yet".into(),
            )),
        }
    }

    /// The number of events a list returns for a requested `limit`, and whether the cap cut it.
    pub(crate) fn limit(&self, requested: Option<i64>) -> Result<(usize, bool), QueryError> {
        scope::check_limit(requested, FieldNames::REST)?;
        match requested {
            None => Ok((DEFAULT_LIMIT.min(self.max_list), false)),
            Some(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                Ok((n.min(self.max_list), n > self.max_list))
            }
        }
    }
}
