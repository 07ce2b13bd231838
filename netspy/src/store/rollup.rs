//! Running tallies of connection records in buckets of consecutive records, so that a
//! summary over a window adds up a few hundred tallies instead of walking every record.
//!
//! A bucket holds the tally of its records in total and by owner; eviction and TCP outcomes
//! arriving later keep it exact. A summary takes a bucket's tally when all of the bucket's
//! records are inside the window and walks the bucket's records otherwise, so at most the
//! two buckets at the window's edges are walked (at most [`BUCKET_RECORDS`] records each).
//! Owner tallies are bounded per bucket (see [`OwnerTallies`]): a fork-per-connect workload
//! would otherwise cost one tally per event.

use std::{collections::VecDeque, ops::Range};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Outcome, StoredConnection, Sym,
    table::{Selection, Table},
};

/// Records per bucket: the most a summary walks at each edge of its window.
pub const BUCKET_RECORDS: u64 = 16_384;
/// Most owners a bucket tallies separately. An owner of at least BUCKET_RECORDS /
/// MAX_OWNERS (64) records in a bucket keeps its tally (there is room for all such).
const MAX_OWNERS: usize = 256;

const EINPROGRESS: u8 = 115;

/// What a connection summary counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Connect attempts.
    pub count: u64,
    /// Attempts whose `connect` failed outright (a negative return other than EINPROGRESS).
    pub failed_calls: u64,
    /// Results of the TCP (and MPTCP) attempts; UDP and UNIX connects have no handshake
    /// and are not counted here.
    pub outcomes: OutcomeCounts,
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
        let mut t = Self::default();
        t.count(r);
        t
    }

    /// Counts one record in.
    pub fn count(&mut self, r: &StoredConnection) {
        self.count += 1;
        self.failed_calls += u64::from(r.call_errno != 0 && r.call_errno != EINPROGRESS);
        let o = &mut self.outcomes;
        *match r.outcome {
            Outcome::Established => &mut o.established,
            Outcome::Refused => &mut o.refused,
            Outcome::TimedOut => &mut o.timed_out,
            Outcome::Failed => &mut o.failed,
            Outcome::Aborted => &mut o.aborted,
            Outcome::Unknown => &mut o.unknown,
            Outcome::NoHandshake => return,
        } += 1;
    }

    fn fields(&mut self) -> [&mut u64; 8] {
        [
            &mut self.count,
            &mut self.failed_calls,
            &mut self.outcomes.established,
            &mut self.outcomes.refused,
            &mut self.outcomes.timed_out,
            &mut self.outcomes.failed,
            &mut self.outcomes.aborted,
            &mut self.outcomes.unknown,
        ]
    }

    /// Adds another tally.
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
    fn sum(&self, owners: &[Sym], sum: &mut Tally) -> Vec<Sym> {
        let mut walk = Vec::new();
        for owner in owners {
            match self.tallies.get(owner) {
                Some(t) => sum.add(t),
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
    by_owner: OwnerTallies,
}

impl Bucket {
    fn add(&mut self, r: &StoredConnection, t: &Tally) {
        self.total.add(t);
        self.by_owner.add(r.owner, t);
    }

    fn sub(&mut self, r: &StoredConnection, t: &Tally) {
        self.total.sub(t);
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
    pub fn sum(&self, table: &Table<StoredConnection>, sel: &Selection) -> Tally {
        let mut sum = Tally::default();
        // Sequence numbers to walk, and for which owners (None: as `sel` says).
        let mut pending: Option<(Range<u64>, Option<Vec<Sym>>)> = None;
        let flush =
            |pending: &mut Option<(Range<u64>, Option<Vec<Sym>>)>, sum: &mut Tally| match pending
                .take()
            {
                Some((seqs, None)) => table.select_seqs(sel, seqs).for_each(|r| sum.count(r)),
                Some((seqs, Some(owners))) => {
                    let some = Selection {
                        owners: Some(owners),
                        ..sel.clone()
                    };
                    table.select_seqs(&some, seqs).for_each(|r| sum.count(r));
                }
                None => {}
            };
        for b in &self.buckets {
            let walk = if b.outside(sel) {
                None
            } else if !b.inside(sel) {
                Some(None)
            } else {
                match &sel.owners {
                    None => {
                        sum.add(&b.total);
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
