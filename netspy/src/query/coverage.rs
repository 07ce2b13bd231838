//! How much of an answer's window the history covers: every answer says what it could not
//! see (netspy not yet running, history evicted, events lost in the kernel), so that a gap
//! never reads as a quiet process.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    events::Kind,
    store::{Selection, Store},
};

/// The window an answer covers and what is missing from it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct Coverage {
    /// Start of the window (inclusive).
    pub since: DateTime<Utc>,
    /// End of the window (exclusive; the time of the answer when none was asked).
    pub until: DateTime<Utc>,
    /// True when netspy watched the whole window and the history still holds all it saw:
    /// then "none found" means none happened.
    pub complete: bool,
    /// netspy began collecting at this time, inside the window: before it, nothing was seen.
    pub collecting_since: Option<DateTime<Utc>>,
    /// Records of this kind inside the window were evicted (by `--retention` or
    /// `--max-events`): the history is complete only after this time.
    pub history_since: Option<DateTime<Utc>>,
    /// Events of this kind evicted since netspy started (when `history_since` is set).
    pub evicted: u64,
    /// Events of this kind the kernel could not deliver in the window (ring buffer full),
    /// of any process: the kernel cannot tell whose they were.
    pub lost_in_kernel: u64,
    /// Connections only: TCP results lost in the kernel in the window (those connects
    /// show no result).
    pub results_lost_in_kernel: u64,
}

impl Coverage {
    /// The coverage of `selection`'s window in the history of `kind` in `store`, at `now`
    /// (connections: with their TCP results).
    pub fn of(store: &Store, kind: Kind, selection: &Selection, now: DateTime<Utc>) -> Self {
        let now_ns = now.timestamp_nanos_opt().unwrap_or(i64::MAX);
        let since_ns = selection.since_ns.max(0);
        let until_ns = selection.until_ns.min(now_ns);
        let gaps = store.gaps();
        let stats = store.stats();
        let evicted = stats
            .by_kind()
            .find_map(|(k, kept)| (k == kind).then_some(kept.evicted))
            .unwrap_or(0);
        let results = match kind {
            Kind::Connection => gaps.of(Kind::TcpOutcome).lost_between(since_ns, until_ns),
            _ => 0,
        };
        let kind = gaps.of(kind);
        let collecting_since = gaps
            .collecting_since_ns
            .filter(|&t| t > since_ns)
            .map(DateTime::from_timestamp_nanos);
        let history_since = kind
            .newest_evicted_ns
            .filter(|&t| t >= since_ns)
            .map(DateTime::from_timestamp_nanos);
        let lost_in_kernel = kind.lost_between(since_ns, until_ns);
        Self {
            since: DateTime::from_timestamp_nanos(since_ns),
            until: DateTime::from_timestamp_nanos(until_ns),
            complete: collecting_since.is_none()
                && history_since.is_none()
                && lost_in_kernel == 0
                && results == 0,
            collecting_since,
            history_since,
            evicted: if history_since.is_some() { evicted } else { 0 },
            lost_in_kernel,
            results_lost_in_kernel: results,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{events::KindCounts, query::fixtures::udp_connect, store::Limits};

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_window_says_what_it_could_not_see() {
        let now = DateTime::from_timestamp_nanos(1_000 * S);
        let mut store = Store::new(Limits {
            max_age: Duration::from_secs(3600),
            max_events: 3,
            ..Limits::default()
        });
        let window = |since_s: i64| Selection {
            owners: None,
            since_ns: since_s * S,
            until_ns: i64::MAX,
        };
        let of =
            |store: &Store, since_s| Coverage::of(store, Kind::Connection, &window(since_s), now);
        assert!(of(&store, 940).complete, "nothing known missing");

        store.begin_collecting(900 * S);
        let c = of(&store, 850);
        assert!(!c.complete);
        assert_eq!(
            c.collecting_since,
            Some(DateTime::from_timestamp_nanos(900 * S))
        );
        assert!(of(&store, 940).complete, "netspy ran the whole window");

        for t in [910, 920, 930, 950, 960] {
            store.ingest(udp_connect(t * S, 1, "dig", 53));
        }
        let c = of(&store, 915);
        assert_eq!(
            (c.history_since, c.evicted),
            (Some(DateTime::from_timestamp_nanos(920 * S)), 2),
            "two records evicted by count, the newest of them inside the window"
        );
        assert!(
            of(&store, 921).complete,
            "the evicted records are older than the window"
        );

        store.note_losses(970 * S, &KindCounts::default());
        store.note_losses(
            980 * S,
            &KindCounts {
                connection: 4,
                tcp_outcome: 1,
                packet_drop: 9,
                ..KindCounts::default()
            },
        );
        let c = of(&store, 975);
        assert_eq!((c.lost_in_kernel, c.results_lost_in_kernel), (4, 1));
        assert!(!c.complete);
        assert!(of(&store, 985).complete, "the loss was before the window");
        let drops = Coverage::of(&store, Kind::PacketDrop, &window(975), now);
        assert_eq!(drops.lost_in_kernel, 9);
    }
}
