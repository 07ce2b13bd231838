//! Following the history as it grows (`GET /api/stream`): each step reads the records
//! stored since a cursor, filtered as the lists filter, as the same views `/api/events`
//! gives. A follower only holds a cursor: it reads under the store's read lock a bounded
//! step at a time, so one that reads slowly never holds back ingest or other followers;
//! one that falls further behind than the history reaches is told what it missed.
//!
//! Records are sent once they are [`HOLD_NS`] old, so that a TCP connect usually carries
//! its result and a drop that lost its socket its sender (a connect still waiting for its
//! result then shows none, and an `outcome` filter sees the result known by then). Within a
//! step, connections come in the order they were stored, then drops, so each event's cursor
//! covers exactly the events sent before it.

use std::{fmt, str::FromStr, sync::OnceLock};

use super::{
    ConnectionView, DropView, EventKind, EventView, OutcomeFilter, Query, QueryError,
    StreamRequest, drops::routine_reasons,
};

/// Why `type=dns` is refused here.
const NO_LOOKUPS: &str = "the stream carries connections and packet drops; host-name lookups \
    are in /api/list-dns and /api/events?type=dns (connections carry their names)";

/// How old a record is before it is sent, ns.
pub const HOLD_NS: i64 = 1_000_000_000;
/// Most records of each kind one step reads (about a millisecond under the read lock).
const STEP_RECORDS: u64 = 1024;

/// This daemon run, in cursors: sequence numbers start again at 0 when the daemon does, so a
/// cursor of another run means nothing here.
fn this_run() -> u64 {
    static RUN: OnceLock<u64> = OnceLock::new();
    *RUN.get_or_init(|| {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        u64::try_from(now).unwrap_or(0) ^ u64::from(std::process::id())
    })
}

impl StreamRequest {
    /// Checks the filters (as the lists check them).
    pub fn validate(&self) -> Result<(), QueryError> {
        if self.kind == Some(EventKind::Dns) {
            return Err(QueryError::BadRequest(NO_LOOKUPS.into()));
        }
        self.scope().validate()
    }
}

/// Where a follower is: the next connection and drop sequence numbers to read, in one
/// daemon run. Written `<run>-<connections>-<drops>` as each event's SSE `id`, so a client
/// that reconnects with `Last-Event-ID` goes on after the last event it had; one that comes
/// back to a restarted daemon starts at the new daemon's oldest record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    run: u64,
    /// Next connection record.
    pub connections: u64,
    /// Next drop record.
    pub drops: u64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.run, self.connections, self.drops)
    }
}

impl FromStr for Cursor {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            QueryError::BadRequest(format!(
                "Last-Event-ID must be an event id this API sent (<n>-<n>-<n>), got {:?}",
                s.chars().take(64).collect::<String>()
            ))
        };
        let mut parts = s.splitn(3, '-').map(str::parse::<u64>);
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(run)), Some(Ok(connections)), Some(Ok(drops))) => Ok(Self {
                run,
                connections,
                drops,
            }),
            _ => Err(bad()),
        }
    }
}

/// What one step found.
#[derive(Debug, Default)]
pub struct StreamStep {
    /// Events, connections then drops, each with the cursor just past it.
    pub events: Vec<(Cursor, EventView)>,
    /// Records of a kind asked for that were evicted before the follower read them
    /// (matching the filters or not).
    pub missed: Vec<(EventKind, u64)>,
    /// Where the next step starts.
    pub cursor: Option<Cursor>,
    /// True when records old enough to send are left for the next step.
    pub more: bool,
}

impl Query {
    /// The cursor of a follower that starts now.
    pub fn stream_start(&self) -> Cursor {
        let store = self.read();
        Cursor {
            run: this_run(),
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
            (Some(EventKind::Connection), _) | (None, Some(_)) => (true, false),
            (Some(EventKind::Dns), _) => return Err(QueryError::BadRequest(NO_LOOKUPS.into())),
        };
        let store = self.read();
        let cutoff = now_ns.saturating_sub(HOLD_NS);
        let mut step = StreamStep::default();
        // Another run's cursor: from the oldest record of this one.
        let start = match cursor.run == this_run() {
            true => cursor,
            false => Cursor {
                run: this_run(),
                connections: store.connections().first_seq(),
                drops: store.drops().first_seq(),
            },
        };
        // Per kind: where to read from (past what was evicted, never past the end), and to.
        let plan = |first: u64, end: u64, next: u64, ready: u64| {
            let from = next.clamp(first, end);
            (
                from,
                ready.clamp(from, from.saturating_add(STEP_RECORDS)),
                next < first,
            )
        };
        let (c_ready, d_ready) = (
            store.connections().seq_at_time(cutoff),
            store.drops().seq_at_time(cutoff),
        );
        let (c_from, c_to, c_missed) = plan(
            store.connections().first_seq(),
            store.connections().end_seq(),
            start.connections,
            c_ready,
        );
        let (d_from, d_to, d_missed) = plan(
            store.drops().first_seq(),
            store.drops().end_seq(),
            start.drops,
            d_ready,
        );
        if connections && c_missed {
            step.missed
                .push((EventKind::Connection, c_from - start.connections));
        }
        if drops && d_missed {
            step.missed
                .push((EventKind::PacketDrop, d_from - start.drops));
        }
        step.more = c_to < c_ready || d_to < d_ready;
        let next = Cursor {
            run: start.run,
            connections: c_to,
            drops: d_to,
        };
        step.cursor = Some(next);
        if (c_from, d_from) == (c_to, d_to) {
            return Ok(step);
        }
        // Every record in the ranges is old enough (ranges end at the cutoff), even one
        // stored slightly out of time order: no time filter, so none is skipped.
        let mut selection = req.scope().resolve(&store, None)?.selection;
        selection.since_ns = i64::MIN;
        selection.until_ns = i64::MAX;
        let mut at = Cursor {
            run: start.run,
            connections: c_from,
            drops: d_from,
        };
        if connections && c_from < c_to {
            let outcome = req.outcome.map(OutcomeFilter::stored);
            let mut found: Vec<_> = store
                .connections()
                .select_numbered(&selection, c_from..c_to)
                .filter(|(_, r)| outcome.is_none_or(|o| r.outcome.reported() == o))
                .collect();
            found.sort_unstable_by_key(|(seq, _)| *seq);
            for (seq, r) in found {
                at.connections = seq + 1;
                let view = EventView::Connection(ConnectionView::new(r, &store));
                step.events.push((at, view));
            }
        }
        at.connections = c_to;
        if drops && d_from < d_to {
            let routine = match req.include_routine {
                Some(true) => Vec::new(),
                _ => routine_reasons(&store),
            };
            let mut found: Vec<_> = store
                .drops()
                .select_numbered(&selection, d_from..d_to)
                .filter(|(_, r)| !routine.contains(&r.reason))
                .collect();
            found.sort_unstable_by_key(|(seq, _)| *seq);
            for (seq, r) in found {
                at.drops = seq + 1;
                step.events
                    .push((at, EventView::PacketDrop(DropView::new(r, &store))));
            }
        }
        Ok(step)
    }
}
