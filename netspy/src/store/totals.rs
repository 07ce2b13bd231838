//! Counts since the daemon started, for `/metrics`: connect attempts, failed calls, TCP
//! results and handshake latency, and packet drops (sampled-out ones included), by process
//! name. History is evicted; these never are, so Prometheus' `rate()` sees every event.
//!
//! Cardinality is bounded: at most `top` process names have series of their own and the
//! rest count as `other`. Names take slots while slots are free; every [`PERIOD_NS`] the
//! slots go to the names most active in the period just ended, a name holding a slot
//! counting double so that two names of similar activity do not swap back and forth. A name
//! that loses its slot loses its series (Prometheus marks them stale) and counts in `other`
//! from then on, so a rate summed over all series sees every event.

use std::{collections::VecDeque, sync::Arc};

use super::{Map, SocketKinds};
use crate::{
    events::{Kind, TcpResult, errno_name},
    kinds::KindTables,
};

/// How often the slots go to the most active names, ns.
pub const PERIOD_NS: i64 = 60_000_000_000;
/// Names without a slot whose activity is followed for the next choice.
const MAX_CANDIDATES: usize = 1024;
/// A drop that lost its socket waits this long for its sender (as in `orphans.rs`) before
/// it is counted without a process, ns.
const ORPHAN_WAIT_NS: i64 = 11_000_000_000;
/// At most this many drops wait for a sender; more are counted without one at once.
const MAX_WAITING: usize = 16_384;
/// Upper bounds of the TCP handshake latency buckets, seconds: loopback and LAN handshakes
/// take tens of microseconds, a SYN that is never answered ends after about 130 s.
pub const LATENCY_BOUNDS: [f64; 19] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 130.0,
];
/// The `process` label of the names without a slot. Longer than the 15 bytes the kernel
/// keeps of a name, so no process can be named this.
pub const OTHER: &str = "(other processes)";
/// The `process` label of what no process owned (drops of forwarded packets, TCP results
/// of connects netspy did not see); as long for the same reason.
pub const UNOWNED: &str = "(no process known)";

/// Counts of one label value of `process`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Counts {
    /// Connect attempts by socket kind code.
    connects: Vec<(u8, u64)>,
    /// Failed `connect` calls by errno.
    failed_calls: Vec<(u8, u64)>,
    /// TCP results, in [`TcpResult::ALL`] order.
    results: [u64; 5],
    /// Drops by reason code.
    drops: Vec<(u32, u64)>,
    /// Counts of the kinds kept whole, by kind, family index and label value.
    kinds: Vec<((Kind, usize, &'static str), u64)>,
}

fn bump<K: PartialEq>(counts: &mut Vec<(K, u64)>, key: K, n: u64) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, count)) => *count += n,
        None => counts.push((key, n)),
    }
}

/// Counts one event of a kind kept whole in its families ([`crate::store::KindRecord`]).
pub struct FamilyCounter<'a> {
    kind: Kind,
    counts: &'a mut Counts,
}

impl FamilyCounter<'_> {
    /// Adds `n` to the family at `family` in the kind's list, under label value `label`.
    pub fn add(&mut self, family: usize, label: &'static str, n: u64) {
        bump(&mut self.counts.kinds, (self.kind, family, label), n);
    }
}

/// A name's counts and its activity in the current period.
#[derive(Default)]
struct Slot {
    counts: Counts,
    recent: u64,
}

/// Handshake latencies of one TCP result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// Seconds, summed.
    pub sum: f64,
    /// Handshakes counted.
    pub count: u64,
    /// Handshakes per bucket of [`LATENCY_BOUNDS`] (not cumulative), and past the last.
    pub buckets: [u64; LATENCY_BOUNDS.len() + 1],
}

impl Latency {
    fn observe(&mut self, seconds: f64) {
        self.sum += seconds;
        self.count += 1;
        let i = LATENCY_BOUNDS.partition_point(|&bound| bound < seconds);
        self.buckets[i] += 1;
    }
}

/// A drop whose owner may still be learnt (see `orphans.rs`).
struct Waiting {
    seq: u64,
    time_ns: i64,
    reason: u32,
    settled: bool,
}

/// The counts, and which names have slots.
pub struct Totals {
    top: usize,
    slots: Map<Arc<str>, Slot>,
    candidates: Map<Arc<str>, u64>,
    other: Counts,
    /// Drops and TCP results no process owned.
    unowned: Counts,
    latency: [Latency; 5],
    reasons: Map<u32, Arc<str>>,
    waiting: VecDeque<Waiting>,
    period_start_ns: Option<i64>,
}

impl Totals {
    /// Counts with at most `top` names labelled.
    pub fn new(top: usize) -> Self {
        Self {
            top,
            slots: Map::default(),
            candidates: Map::default(),
            other: Counts::default(),
            unowned: Counts::default(),
            latency: Default::default(),
            reasons: Map::default(),
            waiting: VecDeque::new(),
            period_start_ns: None,
        }
    }

    /// The counts `name` goes to, `n` more events of its activity.
    fn counts(&mut self, name: Option<&Arc<str>>, n: u64) -> &mut Counts {
        let Some(name) = name else {
            return &mut self.unowned;
        };
        if !self.slots.contains_key(name.as_ref()) && self.slots.len() < self.top {
            self.slots.insert(name.clone(), Slot::default());
        }
        if let Some(slot) = self.slots.get_mut(name.as_ref()) {
            slot.recent += n;
            return &mut slot.counts;
        }
        let room = self.candidates.len() < MAX_CANDIDATES;
        match self.candidates.get_mut(name.as_ref()) {
            Some(recent) => *recent += n,
            None if room => {
                self.candidates.insert(name.clone(), n);
            }
            None => {}
        }
        &mut self.other
    }

    /// A connect attempt of socket kind `kind` whose call failed with `errno` (0 when it
    /// did not fail).
    pub fn connect(&mut self, name: &Arc<str>, kind: u8, errno: u8) {
        let counts = self.counts(Some(name), 1);
        bump(&mut counts.connects, kind, 1);
        if errno != 0 {
            bump(&mut counts.failed_calls, errno, 1);
        }
    }

    /// A TCP connect's result, with the handshake's duration when known.
    pub fn tcp_result(
        &mut self,
        name: Option<&Arc<str>>,
        result: TcpResult,
        latency_ns: Option<u64>,
    ) {
        let i = TcpResult::ALL
            .iter()
            .position(|r| *r == result)
            .unwrap_or(0);
        self.counts(name, 0).results[i] += 1;
        if let Some(ns) = latency_ns {
            self.latency[i].observe(ns as f64 / 1e9);
        }
    }

    /// `n` drops of reason `code` (named `reason`) owned by `name`.
    pub fn drops(&mut self, name: Option<&Arc<str>>, code: u32, reason: &Arc<str>, n: u64) {
        self.reasons.entry(code).or_insert_with(|| reason.clone());
        bump(&mut self.counts(name, n).drops, code, n);
    }

    /// An event of a kind kept whole, owned by `name`: its counter, for its families.
    pub fn kind_event(&mut self, name: Option<&Arc<str>>, kind: Kind) -> FamilyCounter<'_> {
        FamilyCounter {
            kind,
            counts: self.counts(name, 1),
        }
    }

    /// A drop (`seq` in the drop table) that lost its socket: counted once its sender is
    /// known ([`Totals::attributed`]) or once it can no longer be ([`Totals::tick`]).
    pub fn orphan(&mut self, seq: u64, time_ns: i64, code: u32, reason: &Arc<str>) {
        if self.waiting.len() >= MAX_WAITING {
            self.drops(None, code, reason, 1);
            return;
        }
        self.reasons.entry(code).or_insert_with(|| reason.clone());
        self.waiting.push_back(Waiting {
            seq,
            time_ns,
            reason: code,
            settled: false,
        });
    }

    /// The drop `seq` turned out to be `name`'s: counted now if it was waiting.
    pub fn attributed(&mut self, seq: u64, name: &Arc<str>) {
        let Ok(i) = self.waiting.binary_search_by_key(&seq, |w| w.seq) else {
            return;
        };
        let Some(w) = self.waiting.get_mut(i).filter(|w| !w.settled) else {
            return;
        };
        w.settled = true;
        let code = w.reason;
        bump(&mut self.counts(Some(name), 1).drops, code, 1);
    }

    /// Once a second: counts the orphans whose wait ended without a sender, and every
    /// [`PERIOD_NS`] gives the slots to the most active names.
    pub fn tick(&mut self, now_ns: i64) {
        let cutoff = now_ns.saturating_sub(ORPHAN_WAIT_NS);
        while let Some(w) = self.waiting.front() {
            if !w.settled && w.time_ns >= cutoff {
                break;
            }
            if !w.settled {
                bump(&mut self.unowned.drops, w.reason, 1);
            }
            self.waiting.pop_front();
        }
        let start = *self.period_start_ns.get_or_insert(now_ns);
        if now_ns.saturating_sub(start) >= PERIOD_NS {
            self.period_start_ns = Some(now_ns);
            self.choose_slots();
        }
    }

    fn choose_slots(&mut self) {
        let mut ranked: Vec<(u64, bool, Arc<str>)> = self
            .slots
            .iter()
            .map(|(name, slot)| (slot.recent.saturating_mul(2), true, name.clone()))
            .chain(self.candidates.drain().map(|(name, n)| (n, false, name)))
            .collect();
        // Most active first; a held slot first among equals.
        ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        ranked.truncate(self.top);
        self.slots
            .retain(|name, _| ranked.iter().any(|(_, _, n)| n == name));
        for (_, held, name) in ranked {
            if !held {
                self.slots.insert(name, Slot::default());
            }
        }
        for slot in self.slots.values_mut() {
            slot.recent = 0;
        }
    }

    /// The counts with their labels' values, for encoding: one row per distinct set of
    /// label values (IPv4 and IPv6 TCP are both `TCP`).
    pub fn snapshot(&self, kinds: &SocketKinds) -> TotalsSnapshot {
        let other: Arc<str> = Arc::from(OTHER);
        let unowned: Arc<str> = Arc::from(UNOWNED);
        let named = self
            .slots
            .iter()
            .map(|(name, slot)| (name, &slot.counts))
            .chain([(&other, &self.other), (&unowned, &self.unowned)]);
        let mut connects = Map::<(Arc<str>, String), u64>::default();
        let mut failed_calls = Map::<(Arc<str>, String), u64>::default();
        let mut tcp_results = Map::<(Arc<str>, &'static str), u64>::default();
        let mut drops = Map::<(Arc<str>, Arc<str>), u64>::default();
        let mut by_family = Map::<(Kind, usize), Map<(Arc<str>, &'static str), u64>>::default();
        for (name, counts) in named {
            for &(kind, n) in &counts.connects {
                let protocol = kinds.get(kind).protocol_label();
                *connects.entry((name.clone(), protocol)).or_default() += n;
            }
            for &(errno, n) in &counts.failed_calls {
                let errno = errno_name(i32::from(errno)).unwrap_or_else(|| errno.to_string());
                *failed_calls.entry((name.clone(), errno)).or_default() += n;
            }
            for (result, &n) in TcpResult::ALL.iter().zip(&counts.results) {
                if n > 0 {
                    *tcp_results
                        .entry((name.clone(), result.label()))
                        .or_default() += n;
                }
            }
            for &((kind, family, label), n) in &counts.kinds {
                *by_family
                    .entry((kind, family))
                    .or_default()
                    .entry((name.clone(), label))
                    .or_default() += n;
            }
            for &(code, n) in &counts.drops {
                let reason = self
                    .reasons
                    .get(&code)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(code.to_string()));
                *drops.entry((name.clone(), reason)).or_default() += n;
            }
        }
        let mut families = vec![
            Family::of(
                "connect_attempts",
                "connect() calls seen, by process (process name, `(other processes)` for \
                     names without a series of their own) and protocol",
                "protocol",
                connects,
            ),
            Family::of(
                "connect_failed_calls",
                "connect() calls that returned an error (EINPROGRESS is not one), by \
                     process and errno",
                "errno",
                failed_calls,
            ),
            Family::of(
                "tcp_connect_results",
                "How TCP connects ended (established, refused, timed_out, failed, \
                     aborted), by process (`(no process known)` when the connect was not seen)",
                "result",
                tcp_results,
            ),
            Family::of(
                "packet_drops",
                "Packets the kernel dropped, by reason and owning process (`(no process \
                     known)` when none owned it); exact, sampled-out drops included",
                "reason",
                drops,
            ),
        ];
        for (kind, specs) in KindTables::families() {
            for (i, spec) in specs.iter().enumerate() {
                let counts = by_family.remove(&(kind, i)).unwrap_or_default();
                families.push(Family::of(spec.name, spec.help, spec.label, counts));
            }
        }
        TotalsSnapshot {
            families,
            latency: TcpResult::ALL
                .iter()
                .zip(&self.latency)
                .filter(|(_, l)| l.count > 0)
                .map(|(r, l)| (r.label(), l.clone()))
                .collect(),
        }
    }
}

/// One per-process counter family of `/metrics`: every count of one kind of thing by
/// process name (`other` for names without a slot, [`UNOWNED`] when no process owned the
/// event) and one more label.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// Its name, after `netspy_` and before `_total`.
    pub name: &'static str,
    /// What it counts, for people.
    pub help: &'static str,
    /// The label besides `process`.
    pub label: &'static str,
    /// `(process, label value, count)`, in process then label order.
    pub rows: Vec<(Arc<str>, String, u64)>,
}

impl Family {
    fn of<L: Ord + ToString>(
        name: &'static str,
        help: &'static str,
        label: &'static str,
        counts: Map<(Arc<str>, L), u64>,
    ) -> Self {
        let mut rows: Vec<_> = counts.into_iter().collect();
        rows.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        Self {
            name,
            help,
            label,
            rows: rows
                .into_iter()
                .map(|((process, value), n)| (process, value.to_string(), n))
                .collect(),
        }
    }
}

/// Every count since start, for encoding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TotalsSnapshot {
    /// The per-process counter families, in the order `/metrics` shows them.
    pub families: Vec<Family>,
    /// TCP handshake latency by result.
    pub latency: Vec<(&'static str, Latency)>,
}

impl TotalsSnapshot {
    /// The rows of the family named `name` (none when there is no such family).
    pub fn rows(&self, name: &str) -> &[(Arc<str>, String, u64)] {
        self.families
            .iter()
            .find(|f| f.name == name)
            .map_or(&[], |f| &f.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn connects(t: &Totals) -> Vec<(String, u64)> {
        let mut v: Vec<_> = t
            .snapshot(&SocketKinds::default())
            .rows("connect_attempts")
            .iter()
            .map(|(n, _, c)| (n.to_string(), *c))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn names_past_the_cap_count_as_other_until_they_win_a_slot() {
        let mut t = Totals::new(2);
        t.tick(0);
        for n in ["a", "b", "c", "c", "c"] {
            t.connect(&name(n), 0, 0);
        }
        assert_eq!(
            connects(&t),
            [(OTHER.into(), 3), ("a".into(), 1), ("b".into(), 1)]
        );
        // In the period: a 2 connects (held: counts 4), c 3, b 1 (held: 2). c takes b's slot.
        t.connect(&name("a"), 0, 0);
        t.tick(PERIOD_NS);
        t.connect(&name("c"), 0, 0);
        assert_eq!(
            connects(&t),
            [(OTHER.into(), 3), ("a".into(), 2), ("c".into(), 1)]
        );
    }

    #[test]
    fn a_held_slot_is_kept_against_a_slightly_busier_name() {
        let mut t = Totals::new(1);
        t.tick(0);
        t.connect(&name("a"), 0, 0);
        t.connect(&name("a"), 0, 0);
        for _ in 0..3 {
            t.connect(&name("b"), 0, 0);
        }
        t.tick(PERIOD_NS);
        t.connect(&name("b"), 0, 0);
        assert_eq!(connects(&t), [(OTHER.into(), 4), ("a".into(), 2)]);
        // An idle holder loses its slot to any active name.
        t.tick(2 * PERIOD_NS);
        t.connect(&name("b"), 0, 0);
        assert_eq!(connects(&t), [(OTHER.into(), 4), ("b".into(), 1)]);
    }

    #[test]
    fn failed_calls_results_and_latency_are_counted() {
        let mut t = Totals::new(4);
        t.connect(&name("curl"), 0, 111);
        t.tcp_result(Some(&name("curl")), TcpResult::Refused, Some(150_000));
        t.tcp_result(None, TcpResult::Established, Some(2_000_000_000));
        let s = t.snapshot(&SocketKinds::default());
        assert_eq!(
            s.rows("connect_failed_calls"),
            [(name("curl"), "ECONNREFUSED".to_owned(), 1)]
        );
        assert_eq!(
            s.rows("tcp_connect_results"),
            [
                (name(UNOWNED), "established".to_owned(), 1),
                (name("curl"), "refused".to_owned(), 1),
            ]
        );
        let (result, refused) = &s.latency[1];
        assert_eq!(*result, "refused");
        assert_eq!(refused.count, 1);
        // 150 us is in the (100 us, 250 us] bucket.
        assert_eq!(refused.buckets[1], 1);
        assert_eq!(s.latency[0].1.buckets[13], 1, "2 s is in (1 s, 2.5 s]");
    }

    #[test]
    fn orphaned_drops_wait_for_their_sender_then_count_unowned() {
        let mut t = Totals::new(4);
        let reason = name("NO_SOCKET");
        t.tick(0);
        t.orphan(7, 0, 2, &reason);
        t.orphan(8, 0, 2, &reason);
        t.attributed(7, &name("curl"));
        t.attributed(7, &name("curl"));
        let drops = |t: &Totals| {
            t.snapshot(&SocketKinds::default())
                .rows("packet_drops")
                .to_vec()
        };
        let reason = reason.to_string();
        assert_eq!(drops(&t), [(name("curl"), reason.clone(), 1)]);
        t.tick(ORPHAN_WAIT_NS - 1);
        assert_eq!(drops(&t).len(), 1, "8 still waits");
        t.tick(ORPHAN_WAIT_NS + 1);
        assert_eq!(
            drops(&t),
            [
                (name(UNOWNED), reason.clone(), 1),
                (name("curl"), reason.clone(), 1)
            ]
        );
        // Too late: counted once, unowned.
        t.attributed(8, &name("curl"));
        assert_eq!(drops(&t).len(), 2);
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use crate::store::SocketKind;

    #[test]
    fn ipv4_and_ipv6_of_one_protocol_are_one_series() {
        let mut kinds = SocketKinds::default();
        let v4 = kinds.code(SocketKind {
            family: 2,
            protocol: 6,
            socktype: 1,
        });
        let v6 = kinds.code(SocketKind {
            family: 10,
            protocol: 6,
            socktype: 1,
        });
        let mut t = Totals::new(4);
        let curl: Arc<str> = Arc::from("curl");
        t.connect(&curl, v4, 0);
        t.connect(&curl, v6, 0);
        t.connect(&curl, v6, 0);
        assert_eq!(
            t.snapshot(&kinds).rows("connect_attempts"),
            [(curl, "TCP".to_owned(), 3)]
        );
        assert!(
            OTHER.len() > 15 && UNOWNED.len() > 15,
            "no comm can be a bucket's label"
        );
    }
}
