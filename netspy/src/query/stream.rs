//! Following the history as it grows (`GET /api/stream`): each step reads the records
//! stored since a cursor, filtered as the lists filter, as the same views `/api/events`
//! gives. A follower only holds a cursor: it reads under the store's read lock a bounded
//! step at a time, so one that reads slowly never holds back ingest or other followers;
//! one that falls further behind than the history reaches is told what it missed.
//!
//! Records are sent once they are [`HOLD_NS`] old, so that a TCP connect usually carries
//! its result and a drop that lost its socket its sender (a connect still waiting for its
//! result then shows none, and an `outcome` filter sees the result known by then). Within a
//! step, each kind's records come in the order they were stored, the kinds in
//! [`EventKind::ALL`] order, so each event's cursor covers exactly the events sent before it.

use std::{fmt, str::FromStr, sync::OnceLock};

use super::{
    EventKind, EventView, Query, QueryError, StreamRequest,
    kinds::{Filters, STREAMED},
};

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
    /// Checks the filters (as the lists check them), that the stream carries the kind, and
    /// that an outcome filter is not asked of a kind without a TCP result (which would send
    /// nothing, ever).
    pub fn validate(&self) -> Result<(), QueryError> {
        self.refusal().map_or_else(|| self.scope().validate(), Err)
    }

    /// Why the kind asked for cannot be followed, if it cannot.
    fn refusal(&self) -> Option<QueryError> {
        let kind = self.kind?;
        if !kind.streamed() {
            let carried: Vec<&str> = STREAMED.iter().map(|k| k.name()).collect();
            return Some(QueryError::BadRequest(format!(
                "the stream carries {} events; {name} events are in {} and /api/events?type={name}",
                carried.join(", "),
                kind.list_path(),
                name = kind.name(),
            )));
        }
        EventKind::outcome_refusal(self.kind, self.outcome)
    }
}

/// Where a follower is: the next record to read of each streamed kind, in one daemon run.
/// Written `<run>-<n>-...` (one number per kind of [`STREAMED`]) as each event's SSE `id`, so a client
/// that reconnects with `Last-Event-ID` goes on after the last event it had; one that comes
/// back to a restarted daemon starts at the new daemon's oldest record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    run: u64,
    /// The next record of each kind of [`STREAMED`].
    next: [u64; STREAMED.len()],
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.run)?;
        self.next.iter().try_for_each(|n| write!(f, "-{n}"))
    }
}

impl FromStr for Cursor {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            QueryError::BadRequest(format!(
                "Last-Event-ID must be an event id this API sent (<n>{}), got {:?}",
                "-<n>".repeat(STREAMED.len()),
                s.chars().take(64).collect::<String>()
            ))
        };
        let numbers: Vec<u64> = s
            .split('-')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match numbers.split_first() {
            Some((&run, next)) => Ok(Self {
                run,
                next: next.try_into().map_err(|_| bad())?,
            }),
            None => Err(bad()),
        }
    }
}

/// What one step found.
#[derive(Debug, Default)]
pub struct StreamStep {
    /// Events, each kind's in the order they were stored, the kinds in [`STREAMED`] order,
    /// each with the cursor just past it.
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
            next: STREAMED.map(|kind| kind.bounds(&store, i64::MIN).1),
        }
    }

    /// The events stored after `cursor` that are old enough to send at `now_ns`.
    pub fn stream_step(
        &self,
        req: &StreamRequest,
        cursor: Cursor,
        now_ns: i64,
    ) -> Result<StreamStep, QueryError> {
        if let Some(refusal) = req.refusal() {
            return Err(refusal);
        }
        let wanted = STREAMED.map(|kind| kind.followed(req.kind, req.outcome));
        let store = self.read();
        let cutoff = now_ns.saturating_sub(HOLD_NS);
        let mut step = StreamStep::default();
        // Another run's cursor: from the oldest record of this one.
        let start = match cursor.run == this_run() {
            true => cursor,
            false => Cursor {
                run: this_run(),
                next: STREAMED.map(|kind| kind.bounds(&store, cutoff).0),
            },
        };
        // Per kind: where to read from (past what was evicted, never past the end), and to.
        let mut ranges = [(0, 0); STREAMED.len()];
        for (i, kind) in STREAMED.into_iter().enumerate() {
            let (first, end, ready) = kind.bounds(&store, cutoff);
            let next = start.next[i];
            let from = next.clamp(first, end);
            let to = ready.clamp(from, from.saturating_add(STEP_RECORDS));
            if wanted[i] && next < first {
                step.missed.push((kind, from - next));
            }
            step.more |= to < ready;
            ranges[i] = (from, to);
        }
        step.cursor = Some(Cursor {
            run: start.run,
            next: ranges.map(|(_, to)| to),
        });
        if ranges.iter().all(|(from, to)| from == to) {
            return Ok(step);
        }
        // Every record in the ranges is old enough (ranges end at the cutoff), even one
        // stored slightly out of time order: no time filter, so none is skipped.
        let mut selection = req.scope().resolve(&store, None)?.selection;
        selection.since_ns = i64::MIN;
        selection.until_ns = i64::MAX;
        // Each event's cursor: past it in its kind, past every earlier kind's whole range,
        // and at the start of every later kind's.
        let mut at = Cursor {
            run: start.run,
            next: ranges.map(|(from, _)| from),
        };
        let filters = Filters::new(&store, req.outcome, req.include_routine);
        for (i, kind) in STREAMED.into_iter().enumerate() {
            let (from, to) = ranges[i];
            let mut found = match wanted[i] && from < to {
                true => kind.numbered(&store, &selection, from..to, &filters),
                false => Vec::new(),
            };
            found.sort_unstable_by_key(|(seq, _)| *seq);
            for (seq, view) in found {
                at.next[i] = seq + 1;
                step.events.push((at, view));
            }
            at.next[i] = to;
        }
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        events::TcpResult,
        query::{OutcomeFilter, fixtures},
    };

    #[test]
    fn an_id_names_a_run_and_the_next_record_of_each_kind() {
        let cursor: Cursor = "7-1-2-3".parse().unwrap();
        assert_eq!((cursor.run, cursor.next), (7, [1, 2, 3]));
        assert_eq!(cursor.to_string(), "7-1-2-3");
        for bad in ["7-1-2", "7-1-2-3-4", "", "7-x-2-3", "-1-2-3"] {
            let err = bad.parse::<Cursor>().unwrap_err().to_string();
            assert!(err.contains("(<n>-<n>-<n>-<n>)"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_step_sends_each_kind_asked_for_in_order_with_its_cursor() {
        let query = fixtures::ready_query();
        let start = query.stream_start();
        query.ingest(vec![
            fixtures::retransmit(Some("curl"), "10.0.0.1:40000", "10.0.0.2:443", false),
            fixtures::udp_connect(1, 42, "curl", 53),
        ]);
        let now = i64::MAX;
        let all = query
            .stream_step(&StreamRequest::default(), start, now)
            .unwrap();
        let kinds: Vec<EventKind> = all.events.iter().map(|(_, v)| v.kind()).collect();
        assert_eq!(kinds, [EventKind::Connection, EventKind::Retransmit]);
        let cursors: Vec<String> = all.events.iter().map(|(c, _)| c.to_string()).collect();
        let run = start.run;
        assert_eq!(cursors, [format!("{run}-1-0-0"), format!("{run}-1-0-1")]);
        assert_eq!(all.cursor.map(|c| c.next), Some([1, 0, 1]));
        let only = StreamRequest {
            kind: Some(EventKind::Retransmit),
            ..Default::default()
        };
        let step = query.stream_step(&only, start, now).unwrap();
        assert_eq!(step.events.len(), 1);
        let lookups = StreamRequest {
            kind: Some(EventKind::Dns),
            ..Default::default()
        };
        assert!(query.stream_step(&lookups, start, now).is_err());
        let refused_connects = OutcomeFilter(Some(TcpResult::Refused));
        let refused = StreamRequest {
            kind: Some(EventKind::Retransmit),
            outcome: Some(refused_connects),
            ..Default::default()
        };
        let err = refused.validate().unwrap_err().to_string();
        assert!(err.contains("retransmit events have none"), "{err}");
        let connected = StreamRequest {
            outcome: Some(refused_connects),
            ..Default::default()
        };
        assert!(connected.validate().is_ok());
        let step = query.stream_step(&connected, start, now).unwrap();
        assert!(step.events.is_empty(), "{:?}", step.events);
    }
}
