//! What the history is missing, so that no answer passes a gap off as quiet: when netspy
//! began collecting, how recent the newest evicted record of each kind is, and the events
//! the kernel could not deliver, by the second they were noticed.

use std::collections::VecDeque;

use crate::events::{Kind, KindCounts};

/// Loss records kept: one a second at most, so a day of constant loss (a window reaching
/// further back under constant loss then counts only the last day's).
const MAX_LOSS_SECONDS: usize = 86_400;

/// The loss counters are read once a second (the store writer's tick).
const NOTICED_WITHIN_NS: i64 = 1_000_000_000;

/// The gaps of one kind of history.
#[derive(Debug, Default)]
pub struct KindGaps {
    /// Time of the newest record evicted: a window reaching back before it has lost records.
    pub newest_evicted_ns: Option<i64>,
    /// Events lost in the kernel, as (second noticed, count), oldest first; empty seconds
    /// are not kept.
    losses: VecDeque<(i64, u64)>,
    /// The kernel's loss counter when last read.
    lost_total: u64,
}

impl KindGaps {
    /// A record of time `time_ns` was evicted.
    pub fn evicted(&mut self, time_ns: i64) {
        self.newest_evicted_ns = Some(self.newest_evicted_ns.map_or(time_ns, |t| t.max(time_ns)));
    }

    /// The kernel's loss counter read at `now_ns` (it only grows while the probes run).
    pub(super) fn lost(&mut self, now_ns: i64, total: u64) {
        let new = total.saturating_sub(self.lost_total);
        self.lost_total = total;
        if new == 0 {
            return;
        }
        if self.losses.len() >= MAX_LOSS_SECONDS {
            self.losses.pop_front();
        }
        self.losses.push_back((now_ns, new));
    }

    /// Events lost in `[since_ns, until_ns)`. The counter is read once a second, so a loss
    /// is noticed up to [`NOTICED_WITHIN_NS`] after it happened: a reading up to that long
    /// after the window's end counts in (erring towards saying a window lost events).
    pub fn lost_between(&self, since_ns: i64, until_ns: i64) -> u64 {
        let until_ns = until_ns.saturating_add(NOTICED_WITHIN_NS);
        self.losses
            .iter()
            .filter(|&&(t, _)| since_ns <= t && t < until_ns)
            .map(|&(_, n)| n)
            .sum()
    }

    /// Forgets losses noticed before `cutoff_ns` (older than any history kept).
    fn expire(&mut self, cutoff_ns: i64) {
        while self.losses.front().is_some_and(|&(t, _)| t < cutoff_ns) {
            self.losses.pop_front();
        }
    }
}

/// The gaps of the whole history.
#[derive(Debug, Default)]
pub struct Gaps {
    /// When the probes began to deliver events (None in stores fed by hand).
    pub collecting_since_ns: Option<i64>,
    /// Per kind, indexed by [`Kind::ALL`] position (TCP results: lost ones only, they live
    /// in connection records).
    per_kind: [KindGaps; Kind::ALL.len()],
}

impl Gaps {
    /// The gaps of one kind of history.
    pub fn of(&self, kind: Kind) -> &KindGaps {
        &self.per_kind[kind as usize]
    }

    /// A record of `kind` and time `time_ns` was evicted.
    pub fn evicted(&mut self, kind: Kind, time_ns: i64) {
        self.per_kind[kind as usize].evicted(time_ns);
    }

    /// The kernel's loss counters, read at `now_ns`.
    pub fn note_losses(&mut self, now_ns: i64, losses: &KindCounts) {
        for (kind, lost) in losses.by_kind() {
            self.per_kind[kind as usize].lost(now_ns, lost);
        }
    }

    /// Forgets losses older than the history kept.
    pub fn expire(&mut self, cutoff_ns: i64) {
        for kind in &mut self.per_kind {
            kind.expire(cutoff_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_count_in_the_window_they_were_noticed_in() {
        const S: i64 = 1_000_000_000;
        let mut gaps = KindGaps::default();
        gaps.lost(10 * S, 0);
        gaps.lost(20 * S, 5);
        gaps.lost(30 * S, 5);
        gaps.lost(40 * S, 12);
        assert_eq!(gaps.losses.len(), 2, "seconds without loss are not kept");
        assert_eq!(gaps.lost_between(0, i64::MAX), 12);
        assert_eq!(gaps.lost_between(20 * S + 1, i64::MAX), 7);
        assert_eq!(gaps.lost_between(0, 19 * S), 0, "the end is exclusive");
        assert_eq!(
            gaps.lost_between(0, 19 * S + 1),
            5,
            "read within a second after the window: it happened inside"
        );
        gaps.expire(30 * S);
        assert_eq!(gaps.lost_between(0, i64::MAX), 7);
        gaps.evicted(50);
        gaps.evicted(40);
        assert_eq!(gaps.newest_evicted_ns, Some(50));
    }
}
