//! Indexes of the `COUNTERS` per-CPU array: what the kernel side could not deliver.

/// A connect event was lost: its ring buffer was full.
pub const LOST_CONNECT: u32 = 0;
/// A TCP outcome event was lost: its ring buffer was full.
pub const LOST_TCP: u32 = 1;
/// A drop event was lost: its ring buffer was full.
pub const LOST_DROP: u32 = 2;
/// A connect could not be remembered between enter and exit (pending map full).
pub const PENDING_FULL: u32 = 3;
/// A kernel read failed inside a probe (the event was skipped or sent incomplete).
pub const READ_ERROR: u32 = 4;
/// A drop's full event was not sent because its CPU had sent its share of the window; the
/// drop is counted by reason and owner (`SAMPLED_DROPS_*`).
pub const SAMPLED_OUT_DROP: u32 = 5;
/// A sampled-out drop could not be counted by reason and owner (the count maps were full
/// even for `OTHER_OWNERS`): it is only in `SAMPLED_OUT_DROP`.
pub const SAMPLED_UNCOUNTED: u32 = 6;
/// A name-lookup event was lost: its ring buffer was full.
pub const LOST_DNS: u32 = 7;
/// A name lookup could not be remembered between its call and its return (pending map
/// full).
pub const DNS_PENDING_FULL: u32 = 8;
/// A retransmission event was lost: its ring buffer was full.
pub const LOST_RETRANSMIT: u32 = 9;
/// Number of counters.
pub const COUNT: u32 = 10;
