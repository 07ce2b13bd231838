//! Indexes of the `COUNTERS` per-CPU array: what the kernel side could not deliver. The
//! first [`MAX_RINGS`] count the events each ring buffer had no room for ([`lost`]), so a
//! kind with a ring of its own needs no counter of its own; the rest follow.

/// At most this many ring buffers (`ring::index`).
pub const MAX_RINGS: u32 = 8;

/// Events lost because ring `ring` (a `ring::index`) was full (lookups lost in the connects'
/// ring are counted apart, in [`LOST_DNS`]).
pub const fn lost(ring: u32) -> u32 {
    assert!(ring < MAX_RINGS, "a ring index past MAX_RINGS");
    ring
}

/// A connect could not be remembered between enter and exit (pending map full).
pub const PENDING_FULL: u32 = MAX_RINGS;
/// A kernel read failed inside a probe (the event was skipped or sent incomplete).
pub const READ_ERROR: u32 = MAX_RINGS + 1;
/// A drop's full event was not sent because its CPU had sent its share of the window; the
/// drop is counted by reason and owner (`SAMPLED_DROPS_*`).
pub const SAMPLED_OUT_DROP: u32 = MAX_RINGS + 2;
/// A sampled-out drop could not be counted by reason and owner (the count maps were full
/// even for `OTHER_OWNERS`): it is only in `SAMPLED_OUT_DROP`.
pub const SAMPLED_UNCOUNTED: u32 = MAX_RINGS + 3;
/// A name-lookup event was lost: the connects' ring it shares was full (counted apart from
/// the connects lost there).
pub const LOST_DNS: u32 = MAX_RINGS + 4;
/// A name lookup could not be remembered between its call and its return (pending map
/// full).
pub const DNS_PENDING_FULL: u32 = MAX_RINGS + 5;
/// Number of counters.
pub const COUNT: u32 = MAX_RINGS + 6;
