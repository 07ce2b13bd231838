//! Pairing TCP outcomes with their connect records. Both arrive through different ring
//! buffers, in either order, and a kernel socket address is reused as soon as a socket is
//! freed, so pairs are matched per (socket, destination) in arrival order, and a connect is
//! only paired with an outcome whose SYN it could have sent.

use std::{collections::VecDeque, net::IpAddr};

use crate::events::{TcpOutcome, nanos};

/// Outcomes that arrived before their connect wait at most this many.
const EARLY_MAX: usize = 4096;
/// Connects waiting for their outcome are tracked up to this many.
const AWAITING_MAX: usize = 65_536;
/// An early outcome waits this long for its connect, ns.
const EARLY_TTL_NS: i64 = 10_000_000_000;
/// A SYN is retried for about two minutes at most: a connect waits no longer, ns.
const AWAITING_TTL_NS: i64 = 300_000_000_000;
/// Clock slack when comparing event times, ns.
pub const SLACK_NS: i64 = 1_000_000;

/// What pairs a connect with its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JoinKey {
    /// Kernel socket address.
    pub sock: u64,
    /// Destination address.
    pub ip: IpAddr,
    /// Destination port.
    pub port: u16,
}

impl JoinKey {
    /// The key of an outcome.
    pub fn of(outcome: &TcpOutcome) -> Self {
        Self {
            sock: outcome.sock,
            ip: outcome.destination.ip(),
            port: outcome.destination.port(),
        }
    }
}

/// When the SYN of an outcome went out (ns since the epoch); a connect that returned before
/// that belongs to an earlier use of the socket address.
pub fn syn_time(outcome: &TcpOutcome) -> i64 {
    let at = nanos(outcome.time);
    at.saturating_sub(
        outcome
            .latency_ns
            .map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX)),
    )
}

fn fits(connect_ns: i64, outcome: &TcpOutcome) -> bool {
    connect_ns >= syn_time(outcome).saturating_sub(SLACK_NS)
}

/// Connects waiting for outcomes and outcomes waiting for connects.
#[derive(Default)]
pub struct Joiner {
    awaiting: super::Map<JoinKey, VecDeque<(u64, i64)>>,
    early: super::Map<JoinKey, VecDeque<TcpOutcome>>,
    awaiting_len: usize,
    early_len: usize,
    /// Outcomes given up on (no connect seen in time, or no room).
    pub unmatched: u64,
}

impl Joiner {
    /// A connect record `seq` made at `time_ns`: its outcome if it came first, else it waits.
    pub fn connect(&mut self, key: JoinKey, seq: u64, time_ns: i64) -> Option<TcpOutcome> {
        if let Some(queue) = self.early.get_mut(&key) {
            while let Some(outcome) = queue.pop_front() {
                self.early_len -= 1;
                if fits(time_ns, &outcome) {
                    if queue.is_empty() {
                        self.early.remove(&key);
                    }
                    return Some(outcome);
                }
                self.unmatched += 1;
            }
            self.early.remove(&key);
        }
        if self.awaiting_len < AWAITING_MAX {
            self.awaiting
                .entry(key)
                .or_default()
                .push_back((seq, time_ns));
            self.awaiting_len += 1;
        }
        None
    }

    /// An outcome: the connect record it belongs to if that came first, else it waits.
    pub fn outcome(&mut self, outcome: TcpOutcome) -> Option<(u64, TcpOutcome)> {
        let key = JoinKey::of(&outcome);
        if let Some(queue) = self.awaiting.get_mut(&key) {
            // Older entries whose SYN cannot be this one (failed before sending it) go.
            while let Some((seq, time_ns)) = queue.pop_front() {
                self.awaiting_len -= 1;
                if fits(time_ns, &outcome) {
                    if queue.is_empty() {
                        self.awaiting.remove(&key);
                    }
                    return Some((seq, outcome));
                }
            }
            self.awaiting.remove(&key);
        }
        if self.early_len < EARLY_MAX {
            self.early.entry(key).or_default().push_back(outcome);
            self.early_len += 1;
        } else {
            self.unmatched += 1;
        }
        None
    }

    /// Forgets what waited too long at `now_ns`, or whose record `alive` says is gone.
    pub fn expire(&mut self, now_ns: i64, alive: impl Fn(u64) -> bool) {
        let early_cutoff = now_ns.saturating_sub(EARLY_TTL_NS);
        let mut dropped = 0;
        self.early.retain(|_, queue| {
            let before = queue.len();
            queue.retain(|o| nanos(o.time) >= early_cutoff);
            dropped += before - queue.len();
            !queue.is_empty()
        });
        self.early_len -= dropped;
        self.unmatched += dropped as u64;
        let awaiting_cutoff = now_ns.saturating_sub(AWAITING_TTL_NS);
        let mut forgotten = 0;
        self.awaiting.retain(|_, queue| {
            let before = queue.len();
            queue.retain(|&(seq, time_ns)| time_ns >= awaiting_cutoff && alive(seq));
            forgotten += before - queue.len();
            !queue.is_empty()
        });
        self.awaiting_len -= forgotten;
    }
}
