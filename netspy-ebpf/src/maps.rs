//! The maps and load-time globals shared by the kernel programs (a kind with programs of
//! its own, such as `dns.rs`, keeps its maps beside them).

use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use netspy_common::{
    config::Config,
    counters,
    drop::{self, RateWindow, SampledKey},
    ring,
    task::TaskInfo,
};

/// Connect events. Separate rings per kind: a flood of drops cannot starve connect events.
/// Sizes: `ring::bytes`.
#[map]
pub static CONNECT_EVENTS: RingBuf = RingBuf::with_byte_size(ring::bytes::CONNECT, 0);

/// TCP connect outcomes.
#[map]
pub static TCP_EVENTS: RingBuf = RingBuf::with_byte_size(ring::bytes::TCP, 0);

/// Packet drops (the burstiest source).
#[map]
pub static DROP_EVENTS: RingBuf = RingBuf::with_byte_size(ring::bytes::DROP, 0);

/// Sampled-out drops counted by reason and owner, in two generations: the programs count
/// into the one `SAMPLED_DROPS_SLOT` names, while userspace reads and empties the other, so
/// no count is lost between a read and a delete (`netspy::probes::sampled`).
#[map]
pub static SAMPLED_DROPS_0: PerCpuHashMap<SampledKey, u64> =
    PerCpuHashMap::with_max_entries(drop::SAMPLED_KEYS, 0);

/// The other generation of `SAMPLED_DROPS_0`.
#[map]
pub static SAMPLED_DROPS_1: PerCpuHashMap<SampledKey, u64> =
    PerCpuHashMap::with_max_entries(drop::SAMPLED_KEYS, 0);

/// Unattributed sampled-out drops by reason (`drop::REASON_SLOTS`), in the same two
/// generations as `SAMPLED_DROPS_*`.
#[map]
pub static UNOWNED_SAMPLED_0: PerCpuArray<[u64; drop::REASON_SLOTS]> =
    PerCpuArray::with_max_entries(1, 0);

/// The other generation of `UNOWNED_SAMPLED_0`.
#[map]
pub static UNOWNED_SAMPLED_1: PerCpuArray<[u64; drop::REASON_SLOTS]> =
    PerCpuArray::with_max_entries(1, 0);

/// Which generation the programs count into (0 or 1), set by userspace.
#[map]
pub static SAMPLED_DROPS_SLOT: Array<u32> = Array::with_max_entries(1, 0);

/// The number of the current rate window, counted up by userspace every
/// `drop::RATE_WINDOW_NS`.
#[map]
pub static DROP_WINDOW: Array<u64> = Array::with_max_entries(1, 0);

/// Each CPU's window of full drop events.
#[map]
pub static DROP_RATE: PerCpuArray<RateWindow> = PerCpuArray::with_max_entries(1, 0);

/// Records written per ring since the last wakeup, per CPU (the batch wakeup policy).
#[map]
pub static WAKEUP_COUNTS: PerCpuArray<u32> = PerCpuArray::with_max_entries(ring::index::COUNT, 0);

/// The fallback connect hook only: calls between syscall enter and exit, keyed by pid_tgid.
/// LRU: an entry whose exit was never seen must not fill the map for ever.
#[map]
pub static PENDING_CONNECTS: LruHashMap<u64, PendingConnect> =
    LruHashMap::with_max_entries(16384, 0);

/// A `connect(2)` call's arguments and start, between enter and exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PendingConnect {
    pub started_ns: u64,
    pub fd: u64,
    pub uaddr: u64,
    pub addrlen: u64,
}

/// Who owns a socket, keyed by `struct sock` address: filled in process context (socket,
/// bind, accept, connect, SYN_SENT) so that outcomes and drops raised later in softirq are
/// attributed to the owner.
/// Only `owners` touches it.
#[map]
pub static SOCK_OWNERS: LruHashMap<u64, SockOwner> = LruHashMap::with_max_entries(65536, 0);

/// Slots of `LAST_OWNER_WRITES` (a power of two).
pub const OWNER_WRITE_SLOTS: u32 = 8192;

/// The last owner written to `SOCK_OWNERS` for the sockets of each slot, by any CPU: a
/// direct-mapped cache that spares unchanged owners a map lookup (`owners.rs`).
#[map]
pub static LAST_OWNER_WRITES: Array<OwnerWrite> = Array::with_max_entries(OWNER_WRITE_SLOTS, 0);

/// One slot of `LAST_OWNER_WRITES` (`sk` 0 when empty).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OwnerWrite {
    pub sk: u64,
    pub socket: u64,
    pub tgid: u32,
    pub pid: u32,
    pub comm: [u8; 16],
    pub process: [u8; 16],
}

/// Per-CPU counters indexed by `netspy_common::counters`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counters::COUNT, 0);

/// Offsets and filters written by userspace before load (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
// SAFETY: Config is plain u32 fields; all-zero is a valid value (userspace overwrites it).
pub static CONFIG: Config = unsafe { core::mem::zeroed() };

/// The owner of a socket and when its SYN went out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockOwner {
    pub task: TaskInfo,
    /// `CLOCK_BOOTTIME` ns of the `SYN_SENT` transition, 0 before it.
    pub syn_sent_ns: u64,
    /// Inode number of the owner's socket, 0 when unknown: tells a reused address apart.
    pub socket_ino: u64,
    /// Address of the owner's `struct socket`, 0 when not known: with the task, tells an
    /// unchanged owner without reading the inode.
    pub socket: u64,
}
