//! Running tallies of connection records in buckets of consecutive records, so that a
//! summary over a window adds up a few hundred tallies instead of walking every record.
//!
//! A bucket holds the tally of its records in total and by owner; eviction and TCP outcomes
//! arriving later keep it exact. A summary takes a bucket's tally when all of the bucket's
//! records are inside the window and walks the bucket's records otherwise, so at most the
//! two buckets at the window's edges are walked (at most [`BUCKET_RECORDS`] records each);
//! with a pid or name filter, also the records of owners a bucket keeps no exact tally for.
//! Owner tallies are bounded per bucket (see [`OwnerTallies`]): a fork-per-connect workload
//! would otherwise cost one tally per event.

use std::{collections::VecDeque, ops::Range};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Outcome, StoredConnection, Sym,
    table::{Selection, Table},
};
use crate::events::TcpResult;

/// Records per bucket: the most a summary walks at each edge of its window.
pub const BUCKET_RECORDS: u64 = 16_384;
/// Most owners a bucket tallies separately. An owner of at least BUCKET_RECORDS /
/// MAX_OWNERS (64) records in a bucket keeps its tally (there is room for all such).
const MAX_OWNERS: usize = 256;

/// What a connection summary counts, per bucket and per owner in a bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Connect attempts.
    pub count: u64,
    /// Attempts whose `connect` failed outright (a negative return other than EINPROGRESS).
    pub failed_calls: u64,
    /// Results of the TCP (and MPTCP) attempts; UDP and UNIX connects have no handshake
    /// and are not counted here.
    pub outcomes: OutcomeCounts,
    /// The failed calls by errno.
    call_errors: ErrnoSlots,
}

/// Most errnos a tally counts failed calls of: a process whose connects fail tends to fail
/// one or two ways.
const ERRNO_SLOTS: usize = 4;

/// Failed calls by errno, in a fixed space. The first [`ERRNO_SLOTS`] errnos keep their
/// slot for the tally's life, even at zero, so eviction takes a record off the count it
/// was added to; a further errno marks the tally `overflowed`, and a summary walks its
/// records instead of trusting it (an owner failing five ways in one bucket; a bucket's
/// total counts every errno in full).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ErrnoSlots {
    /// (errno, calls); errno 0 is a free slot.
    slots: [(u8, u32); ERRNO_SLOTS],
    overflowed: bool,
}

impl ErrnoSlots {
    fn add(&mut self, errno: u8, n: u32) {
        if let Some(slot) = self.slots.iter_mut().find(|(e, _)| *e == errno) {
            slot.1 = slot.1.saturating_add(n);
        } else if let Some(slot) = self.slots.iter_mut().find(|(e, _)| *e == 0) {
            *slot = (errno, n);
        } else {
            self.overflowed = true;
        }
    }

    fn sub(&mut self, errno: u8, n: u32) {
        // Not in a slot: it came after they were taken, and `overflowed` stays.
        if let Some(slot) = self.slots.iter_mut().find(|(e, _)| *e == errno) {
            slot.1 = slot.1.saturating_sub(n);
        }
    }

    fn counts(&self) -> impl Iterator<Item = (u8, u32)> + '_ {
        self.slots.iter().copied().filter(|&(e, n)| e != 0 && n > 0)
    }
}

/// TCP connect results.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Handshake completed.
    pub established: u64,
    /// Refused by the peer (RST).
    pub refused: u64,
    /// No answer (SYN retries ran out).
    pub timed_out: u64,
    /// Other errors (unreachable, ...).
    pub failed: u64,
    /// Closed before completing.
    pub aborted: u64,
    /// No result seen: still pending, or the call failed before a SYN went out (see
    /// `failed_calls`).
    pub unknown: u64,
}

impl Tally {
    /// The tally of one record.
    pub fn of(r: &StoredConnection) -> Self {
        let mut t = Self {
            count: 1,
            ..Self::default()
        };
        if let Some(errno) = r.failed_call_errno() {
            t.failed_calls = 1;
            t.call_errors.add(errno, 1);
        }
        if let Some(n) = t.outcomes.of(r.outcome) {
            *n = 1;
        }
        t
    }

    /// True when every count is exact; else the records must be walked.
    fn exact(&self) -> bool {
        !self.call_errors.overflowed
    }

    /// Adds another tally.
    fn add(&mut self, other: &Self) {
        self.count += other.count;
        self.failed_calls += other.failed_calls;
        self.outcomes.add(&other.outcomes);
        for (errno, n) in other.call_errors.counts() {
            self.call_errors.add(errno, n);
        }
        self.call_errors.overflowed |= other.call_errors.overflowed;
    }

    fn sub(&mut self, other: &Self) {
        self.count = self.count.saturating_sub(other.count);
        self.failed_calls = self.failed_calls.saturating_sub(other.failed_calls);
        self.outcomes.sub(&other.outcomes);
        for (errno, n) in other.call_errors.counts() {
            self.call_errors.sub(errno, n);
        }
    }
}

impl OutcomeCounts {
    /// Counts one result in (nothing for connects without a handshake).
    pub fn count(&mut self, outcome: Outcome) {
        if let Some(n) = self.of(outcome) {
            *n += 1;
        }
    }

    /// The count of a result; None for connects without a handshake.
    fn of(&mut self, outcome: Outcome) -> Option<&mut u64> {
        Some(match outcome {
            Outcome::Tcp(TcpResult::Established) => &mut self.established,
            Outcome::Tcp(TcpResult::Refused) => &mut self.refused,
            Outcome::Tcp(TcpResult::TimedOut) => &mut self.timed_out,
            Outcome::Tcp(TcpResult::Failed) => &mut self.failed,
            Outcome::Tcp(TcpResult::Aborted) => &mut self.aborted,
            Outcome::Unknown => &mut self.unknown,
            Outcome::NoHandshake => return None,
        })
    }

    fn fields(&mut self) -> [&mut u64; 6] {
        [
            &mut self.established,
            &mut self.refused,
            &mut self.timed_out,
            &mut self.failed,
            &mut self.aborted,
            &mut self.unknown,
        ]
    }

    /// Adds other counts.
    pub fn add(&mut self, other: &Self) {
        let mut other = *other;
        for (a, b) in self.fields().into_iter().zip(other.fields()) {
            *a += *b;
        }
    }

    fn sub(&mut self, other: &Self) {
        let mut other = *other;
        for (a, b) in self.fields().into_iter().zip(other.fields()) {
            *a = a.saturating_sub(*b);
        }
    }
}

/// What a connection summary counts over a window: tallies and walked records added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TallySum {
    /// Connect attempts.
    pub count: u64,
    /// Attempts whose `connect` failed outright (a negative return other than EINPROGRESS).
    pub failed_calls: u64,
    /// Results of the TCP (and MPTCP) attempts.
    pub outcomes: OutcomeCounts,
    /// The failed calls by errno (summing to `failed_calls`).
    pub call_errors: std::collections::BTreeMap<u8, u64>,
}

impl TallySum {
    /// Counts one record in.
    pub fn count(&mut self, r: &StoredConnection) {
        self.add(&Tally::of(r));
    }

    /// Adds an exact tally.
    fn add(&mut self, t: &Tally) {
        self.add_counts(t, &[]);
        for (errno, n) in t.call_errors.counts() {
            *self.call_errors.entry(errno).or_default() += u64::from(n);
        }
    }

    /// Adds a tally's counts and failed calls by errno from `by_errno` (indexed by errno).
    fn add_counts(&mut self, t: &Tally, by_errno: &[u32]) {
        self.count += t.count;
        self.failed_calls += t.failed_calls;
        self.outcomes.add(&t.outcomes);
        for (errno, &n) in by_errno.iter().enumerate().filter(|&(_, &n)| n > 0) {
            let errno = u8::try_from(errno).unwrap_or(u8::MAX);
            *self.call_errors.entry(errno).or_default() += u64::from(n);
        }
    }
}

/// Tallies of the heavier owners of a bucket. Up to `cap` owners are tallied; when one
/// more comes, owners of fewer than `heavy` records (bucket size / cap) are dropped and from then on no new
/// owner is admitted (`partial`). A tally present is always complete (it was never dropped);
/// an owner absent from a partial bucket has its records walked instead, and those are few
/// unless it came after the bucket filled, which a busy owner rarely does.
struct OwnerTallies {
    tallies: super::Map<Sym, Tally>,
    partial: bool,
    cap: usize,
    heavy: u64,
}

impl OwnerTallies {
    fn new(cap: usize, heavy: u64) -> Self {
        Self {
            tallies: super::Map::default(),
            partial: false,
            cap,
            heavy,
        }
    }

    fn add(&mut self, owner: Sym, t: &Tally) {
        if let Some(entry) = self.tallies.get_mut(&owner) {
            entry.add(t);
            return;
        }
        if self.partial {
            return;
        }
        if self.tallies.len() >= self.cap {
            let heavy = self.heavy;
            self.tallies.retain(|_, t| t.count >= heavy);
            self.partial = true;
            return;
        }
        self.tallies.insert(owner, *t);
    }

    fn sub(&mut self, owner: Sym, t: &Tally) {
        if let Some(entry) = self.tallies.get_mut(&owner) {
            entry.sub(t);
            // Eviction took its last record (absent from a partial bucket, it is walked
            // and found to have none).
            if entry.count == 0 {
                self.tallies.remove(&owner);
            }
        }
    }

    /// Adds the tallies of `owners` to `sum`, and returns those that must be walked.
    fn sum(&self, owners: &[Sym], sum: &mut TallySum) -> Vec<Sym> {
        let mut walk = Vec::new();
        for owner in owners {
            match self.tallies.get(owner) {
                Some(t) if t.exact() => sum.add(t),
                Some(_) => walk.push(*owner),
                None if self.partial => walk.push(*owner),
                None => {}
            }
        }
        walk
    }
}

struct Bucket {
    /// Sequence numbers of the records still held: `seqs.end` grows while the bucket is
    /// the newest, `seqs.start` as eviction takes its records.
    seqs: Range<u64>,
    /// Records ever added (the bucket is closed at [`BUCKET_RECORDS`]).
    added: u64,
    /// Earliest and latest record time ever added (a superset of what is held, so a
    /// bucket is only ever walked when in doubt, never summed wrongly).
    min_ns: i64,
    max_ns: i64,
    total: Tally,
    /// The failed calls of all its records by errno, in full (1 KiB a bucket), so that an
    /// unfiltered summary never walks a bucket for its errnos; owner tallies use slots.
    call_errors: Box<[u32; 256]>,
    by_owner: OwnerTallies,
}

impl Bucket {
    fn add(&mut self, r: &StoredConnection, t: &Tally) {
        self.total.add(t);
        if let Some(errno) = r.failed_call_errno() {
            self.call_errors[usize::from(errno)] += 1;
        }
        self.by_owner.add(r.owner, t);
    }

    fn sub(&mut self, r: &StoredConnection, t: &Tally) {
        self.total.sub(t);
        if let Some(errno) = r.failed_call_errno() {
            let n = &mut self.call_errors[usize::from(errno)];
            *n = n.saturating_sub(1);
        }
        self.by_owner.sub(r.owner, t);
    }

    /// True when every record the bucket holds is in the selection's window.
    fn inside(&self, sel: &Selection) -> bool {
        self.min_ns >= sel.since_ns && self.max_ns < sel.until_ns
    }

    /// True when no record the bucket holds is in the selection's window.
    fn outside(&self, sel: &Selection) -> bool {
        self.max_ns < sel.since_ns || self.min_ns >= sel.until_ns
    }
}

/// The buckets of one connection table.
pub struct Rollup {
    buckets: VecDeque<Bucket>,
    bucket_records: u64,
    max_owners: usize,
}

impl Default for Rollup {
    fn default() -> Self {
        Self::new(BUCKET_RECORDS, MAX_OWNERS)
    }
}

impl Rollup {
    /// Buckets of `records` records keeping at most `max_owners` owner tallies each (small
    /// ones in tests, to cross many buckets and caps).
    pub fn new(records: u64, max_owners: usize) -> Self {
        Self {
            buckets: VecDeque::new(),
            bucket_records: records.max(1),
            max_owners,
        }
    }

    /// Counts record `seq`, just appended to the table.
    pub fn push(&mut self, seq: u64, r: &StoredConnection) {
        let t = Tally::of(r);
        let open = self
            .buckets
            .back()
            .is_some_and(|b| b.added < self.bucket_records && b.seqs.end == seq);
        if !open {
            self.buckets.push_back(Bucket {
                seqs: seq..seq,
                added: 0,
                min_ns: r.time_ns,
                max_ns: r.time_ns,
                total: Tally::default(),
                call_errors: Box::new([0; 256]),
                by_owner: OwnerTallies::new(
                    self.max_owners,
                    (self.bucket_records / self.max_owners.max(1) as u64).max(1),
                ),
            });
        }
        if let Some(b) = self.buckets.back_mut() {
            b.seqs.end = seq + 1;
            b.added += 1;
            b.min_ns = b.min_ns.min(r.time_ns);
            b.max_ns = b.max_ns.max(r.time_ns);
            b.add(r, &t);
        }
    }

    /// Forgets record `seq`, just evicted from the front of the table.
    pub fn pop(&mut self, seq: u64, r: &StoredConnection) {
        let Some(b) = self.buckets.front_mut() else {
            return;
        };
        if b.seqs.start != seq {
            return;
        }
        b.sub(r, &Tally::of(r));
        b.seqs.start += 1;
        if b.seqs.is_empty() {
            self.buckets.pop_front();
        }
    }

    /// Record `seq` changed from `before` to `after` (its TCP outcome arrived).
    pub fn update(&mut self, seq: u64, before: &StoredConnection, after: &StoredConnection) {
        let at = self.buckets.partition_point(|b| b.seqs.end <= seq);
        if let Some(b) = self.buckets.get_mut(at)
            && b.seqs.contains(&seq)
        {
            b.sub(before, &Tally::of(before));
            b.add(after, &Tally::of(after));
        }
    }

    /// The tally of the records `sel` selects from `table`. Records that have to be walked
    /// (buckets straddling the window, owners a bucket keeps no tally for) are walked a run
    /// of neighbouring buckets at a time, through the owner index.
    pub fn sum(&self, table: &Table<StoredConnection>, sel: &Selection) -> TallySum {
        let mut sum = TallySum::default();
        // Sequence numbers to walk, and for which owners (None: as `sel` says).
        let mut pending: Option<(Range<u64>, Option<Vec<Sym>>)> = None;
        let flush = |pending: &mut Option<(Range<u64>, Option<Vec<Sym>>)>, sum: &mut TallySum| {
            match pending.take() {
                Some((seqs, None)) => table.select_seqs(sel, seqs).for_each(|r| sum.count(r)),
                Some((seqs, Some(owners))) => {
                    let some = Selection {
                        owners: Some(owners),
                        ..sel.clone()
                    };
                    table.select_seqs(&some, seqs).for_each(|r| sum.count(r));
                }
                None => {}
            }
        };
        for b in &self.buckets {
            let walk = if b.outside(sel) {
                None
            } else if !b.inside(sel) {
                Some(None)
            } else {
                match &sel.owners {
                    None => {
                        sum.add_counts(&b.total, &b.call_errors[..]);
                        None
                    }
                    Some(owners) => {
                        let light = b.by_owner.sum(owners, &mut sum);
                        (!light.is_empty()).then_some(Some(light))
                    }
                }
            };
            match (walk, &mut pending) {
                (Some(owners), Some((seqs, walking))) if *walking == owners => {
                    seqs.end = b.seqs.end;
                }
                (Some(owners), _) => {
                    flush(&mut pending, &mut sum);
                    pending = Some((b.seqs.clone(), owners));
                }
                (None, _) => flush(&mut pending, &mut sum),
            }
        }
        flush(&mut pending, &mut sum);
        sum
    }
}
