//! The ring buffers between the kernel programs and userspace: how the reader is woken.

/// How a program tells the reader that records are waiting ([`crate::config::Config`]'s
/// `ring_wakeup`). Measured in BENCHMARKS.md: a wakeup costs the program that raises it
/// 1-8 us, a `bpf_ringbuf_query` to decide on one ~85 ns.
pub mod wakeup {
    /// Never: the reader drains every [`super::DRAIN_INTERVAL_MS`] (cheapest; latency up to
    /// that interval).
    pub const TIMER: u32 = 0;
    /// Every [`super::BATCH_RECORDS`] records per CPU, and by the timer in between.
    pub const BATCH: u32 = 1;
    /// The kernel's default: a wakeup whenever the reader had caught up (lowest latency;
    /// one wakeup per record when events are sparse).
    pub const RECORD: u32 = 2;
}

/// Records per CPU between two wakeups with [`wakeup::BATCH`].
pub const BATCH_RECORDS: u32 = 64;

/// How often userspace drains the ring buffers without being woken, in milliseconds.
pub const DRAIN_INTERVAL_MS: u64 = 50;

/// Index of each ring in the per-CPU wakeup counters.
pub mod index {
    /// Connect events.
    pub const CONNECT: u32 = 0;
    /// TCP outcomes.
    pub const TCP: u32 = 1;
    /// Packet drops.
    pub const DROP: u32 = 2;
    /// Number of rings.
    pub const COUNT: u32 = 3;
}
