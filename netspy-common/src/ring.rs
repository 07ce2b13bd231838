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

/// Size of each ring in bytes, chosen from the target rate: at least 100 ms of records at
/// a million events a second, what one core's back-to-back connects produce, so that a
/// reader that drains every 50 ms loses nothing (a record is its size plus an 8-byte header).
pub mod bytes {
    /// Connect events: 160-byte records (272 with a UNIX path), 104k of them; and host-name
    /// lookups (496 bytes), which come at a small fraction of the connect rate (a lookup
    /// costs its caller tens of microseconds at the least) and share the ring so that they
    /// are read before the connects to their answers.
    pub const CONNECT: u32 = 16 << 20;
    /// TCP outcomes: 136-byte records, 58k; a TCP connect needs a handshake, so outcomes
    /// come at well under the rate of UDP connects.
    pub const TCP: u32 = 8 << 20;
    /// Packet drops: 136-byte records, 58k; full drop events are rate-limited per CPU (their
    /// counts are exact apart from that), so this holds 100 ms of events of 29 CPUs.
    pub const DROP: u32 = 8 << 20;
    /// TCP retransmissions: 136-byte records, 29k; a retransmission waits for a timeout
    /// or for duplicate acknowledgements, so even a lossy host makes them at a fraction of
    /// its packet rate.
    pub const RETRANSMIT: u32 = 4 << 20;
}

/// Index of each ring: in the per-CPU wakeup counters, and of its loss counter
/// (`counters::lost`).
pub mod index {
    /// Connect events.
    pub const CONNECT: u32 = 0;
    /// TCP outcomes.
    pub const TCP: u32 = 1;
    /// Packet drops.
    pub const DROP: u32 = 2;
    /// TCP retransmissions.
    pub const RETRANSMIT: u32 = 3;
    /// Number of rings.
    pub const COUNT: u32 = 4;
    const _: () = assert!(COUNT <= crate::counters::MAX_RINGS);
}
