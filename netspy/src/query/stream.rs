//! Following the history as it grows (`GET /api/stream`): each step reads the records
//! stored since a cursor, filtered as the lists filter, as the same views `/api/events`
//! gives. A follower only holds a cursor: it reads under the store's read lock a bounded
//! step at a time, so one that reads slowly never holds back ingest or other followers;
//! one that falls further behind than the history reaches is told what it missed.
//!
//! Records are sent once they are [`HOLD_NS`] old, so that a TCP connect usually carries
//! its result and a drop that lost its socket its sender (a connect still waiting for its
//! result then shows none).

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ConnectionView, DropView, EventKind, EventView, OutcomeFilter, Query, QueryError, Scope,
    drops::routine_reasons, events::stored, scope::MAX_NAME_CHARS,
};

/// How old a record is before it is sent, ns.
pub const HOLD_NS: i64 = 1_000_000_000;
/// Most records of each kind one step reads (a few milliseconds under the read lock).
const STEP_RECORDS: u64 = 4096;

/// What a follower wants: the list filters, without a window (it follows from now, or from
/// where `Last-Event-ID` says it left off).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    /// Only this process id.
    #[serde(default)]
    #[schemars(range(max = 4_294_967_295u32))]
    pub pid: Option<u32>,
    /// Only processes with this name (the kernel's 15-character `comm`), or a glob
    /// (`python*`).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub command: Option<String>,
    /// Same as `command` (the original API's alias), used when `command` is absent.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_CHARS))]
    pub process_name: Option<String>,
    /// `connection` or `packet_drop` (default both).
    #[serde(default, rename = "type")]
    pub kind: Option<EventKind>,
    /// Only connections with this TCP result (no drops then).
    #[serde(default)]
    pub outcome: Option<OutcomeFilter>,
    /// Drops: include routine drops (sockets closing, queues purged), left out by default.
    #[serde(default)]
    pub include_routine: Option<bool>,
}

impl StreamRequest {
    fn scope(&self) -> Scope {
        Scope {
            pid: self.pid,
            command: self.command.clone(),
            process_name: self.process_name.clone(),
            ..Scope::default()
        }
    }

    /// Checks the filters (as the lists check them).
    pub fn validate(&self) -> Result<(), QueryError> {
        self.scope().validate()
    }
}

/// Where a follower is: the next connection and drop sequence numbers to read. Written
/// `<connections>-<drops>` as each event's SSE `id`, so a client that reconnects with
/// `Last-Event-ID` goes on after the last event it had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Next connection record.
    pub connections: u64,
    /// Next drop record.
    pub drops: u64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.connections, self.drops)
    }
}

impl FromStr for Cursor {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            QueryError::BadRequest(format!(
                "Last-Event-ID must be an event id this stream sent (<n>-<n>), got {s:?}"
            ))
        };
        let (c, d) = s.split_once('-').ok_or_else(bad)?;
        Ok(Self {
            connections: c.parse().map_err(|_| bad())?,
            drops: d.parse().map_err(|_| bad())?,
        })
    }
}

/// What one step found.
#[derive(Debug, Default)]
pub struct StreamStep {
    /// Events in time order, each with the cursor just past it.
    pub events: Vec<(Cursor, EventView)>,
    /// Records of each kind evicted before the follower read them (matching or not).
    pub missed: Vec<(EventKind, u64)>,
    /// Where the next step starts.
    pub cursor: Cursor,
    /// True when records old enough to send are left for the next step.
    pub more: bool,
}

impl Query {
    /// The cursor of a follower that starts now.
    pub fn stream_start(&self) -> Cursor {
        let store = self.read();
        Cursor {
            connections: store.connections().end_seq(),
            drops: store.drops().end_seq(),
        }
    }

    /// The events stored after `cursor` that are old enough to send at `now_ns`.
    pub fn stream_step(
        &self,
        req: &StreamRequest,
        cursor: Cursor,
        now_ns: i64,
    ) -> Result<StreamStep, QueryError> {
        let (connections, drops) = match (req.kind, req.outcome) {
            (None, None) => (true, true),
            (Some(EventKind::PacketDrop), _) => (false, true),
            _ => (true, false),
        };
        let store = self.read();
        let mut selection = req.scope().resolve(&store, None)?.selection;
        selection.since_ns = i64::MIN;
        selection.until_ns = now_ns.saturating_sub(HOLD_NS);
        let mut step = StreamStep {
            cursor,
            ..StreamStep::default()
        };
        let mut found: Vec<(i64, u64, EventView, EventKind)> = Vec::new();

        let mut at = cursor;
        let table = store.connections();
        let (from, missed) = catch_up(cursor.connections, table.first_seq());
        step.missed.extend(
            missed
                .filter(|_| connections)
                .map(|n| (EventKind::Connection, n)),
        );
        at.connections = from;
        let ready = table.seq_at_time(selection.until_ns);
        let to = ready.min(from + STEP_RECORDS);
        step.more |= to < ready;
        step.cursor.connections = to.max(from);
        if connections {
            let outcome = req.outcome.map(stored);
            for (seq, r) in table.select_numbered(&selection, from..to) {
                if outcome.is_none_or(|o| r.outcome.reported() == o) {
                    let view = EventView::Connection(ConnectionView::new(r, &store));
                    found.push((r.time_ns, seq, view, EventKind::Connection));
                }
            }
        }

        let table = store.drops();
        let (from, missed) = catch_up(cursor.drops, table.first_seq());
        step.missed
            .extend(missed.filter(|_| drops).map(|n| (EventKind::PacketDrop, n)));
        at.drops = from;
        let ready = table.seq_at_time(selection.until_ns);
        let to = ready.min(from + STEP_RECORDS);
        step.more |= to < ready;
        step.cursor.drops = to.max(from);
        if drops {
            let routine = match req.include_routine {
                Some(true) => Vec::new(),
                _ => routine_reasons(&store),
            };
            for (seq, r) in table.select_numbered(&selection, from..to) {
                if !routine.contains(&r.reason) {
                    let view = EventView::PacketDrop(DropView::new(r, &store));
                    found.push((r.time_ns, seq, view, EventKind::PacketDrop));
                }
            }
        }

        found.sort_by_key(|(time, seq, _, kind)| (*time, *kind == EventKind::PacketDrop, *seq));
        // Each event's cursor covers exactly the events sent before it.
        for (_, seq, view, kind) in found {
            match kind {
                EventKind::Connection => at.connections = seq + 1,
                EventKind::PacketDrop => at.drops = seq + 1,
            }
            step.events.push((at, view));
        }
        Ok(step)
    }
}

/// Where to read from, given the follower's next record and the oldest one still held, and
/// how many it missed when the history no longer reaches back to it.
fn catch_up(next: u64, first: u64) -> (u64, Option<u64>) {
    match next < first {
        true => (first, Some(first - next)),
        false => (next, None),
    }
}
