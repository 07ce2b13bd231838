//! Packet drops.

use crate::task::TaskInfo;

/// A packet the kernel dropped (`kfree_skb` with a drop reason other than "not dropped").
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DropEvent {
    /// The process owning the packet's socket (valid when `flags` has `OWNER_KNOWN`).
    pub owner: TaskInfo,
    /// `CLOCK_BOOTTIME` nanoseconds of the drop.
    pub ts_ns: u64,
    /// Kernel code address that dropped the packet (symbolized in userspace).
    pub location: u64,
    /// Kernel address of the packet's socket (`skb->sk`, else the receiving socket), or 0.
    pub sock: u64,
    /// `enum skb_drop_reason` value; named from the running kernel's BTF in userspace.
    pub reason: u32,
    /// [`crate::flags`] bits.
    pub flags: u32,
    /// `skb->protocol` (ethertype, host byte order).
    pub ethertype: u16,
    /// Address family parsed from the packet (`AF_INET`, `AF_INET6`), 0 when not IP.
    pub family: u16,
    /// L4 protocol from the IP header (`IPPROTO_*`).
    pub protocol: u16,
    /// Source port, host byte order (TCP and UDP).
    pub sport: u16,
    /// Destination port, host byte order (TCP and UDP).
    pub dport: u16,
    /// Explicit padding (always zero).
    pub _pad: [u8; 6],
    /// Source address (IPv4 in the first 4 bytes).
    pub saddr: [u8; 16],
    /// Destination address (IPv4 in the first 4 bytes).
    pub daddr: [u8; 16],
}

const _: () = assert!(size_of::<DropEvent>() == 144);

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, explicit padding.
unsafe impl aya::Pod for DropEvent {}

/// Full drop events are limited per CPU to `Config::drop_events_per_window` in each window
/// of this length (userspace numbers the windows); the drops past it are counted by reason
/// and owner instead.
pub const RATE_WINDOW_NS: u64 = 100_000_000;

/// Unattributed sampled-out drops are counted per reason in a per-CPU array of this many
/// reasons (the kernel's own reasons are below 200; subsystem reasons, with high bits set,
/// go to the (reason, owner) map): an array slot costs a few ns, a hash lookup ~150 here.
pub const REASON_SLOTS: usize = 512;

/// Distinct (reason, owner) counts of sampled-out drops one collection interval holds; past
/// that, drops are counted under [`OTHER_OWNERS`].
pub const SAMPLED_KEYS: u32 = 8192;

/// The owner of the count that takes the drops of every (reason, owner) beyond
/// [`SAMPLED_KEYS`].
pub const OTHER_OWNERS: u32 = u32::MAX;

/// Who the drops counted under one key belong to: the owner's process id, thread name and
/// process name, or zeros when unattributed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SampledKey {
    /// The drop reason.
    pub reason: u32,
    /// The owning process, 0 when unattributed, [`OTHER_OWNERS`] when the map was full.
    pub tgid: u32,
    /// The owning thread's name (NUL-padded).
    pub comm: [u8; 16],
    /// The owning process's name (its thread-group leader's `comm`, NUL-padded).
    pub process: [u8; 16],
    /// The owner's cgroup v2 id (so that a unit's drop counts stay exact in a storm).
    pub cgroup_id: u64,
    /// The owning process's start, ns since boot (as [`crate::task::TaskInfo`]).
    pub started_ns: u64,
}

const _: () = assert!(size_of::<SampledKey>() == 56);

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, no padding.
unsafe impl aya::Pod for SampledKey {}

/// The per-CPU rate window of full drop events.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RateWindow {
    /// The window's number (`DROP_WINDOW` when it began).
    pub window: u64,
    /// Full events sent in it.
    pub sent: u32,
    /// Explicit padding (always zero).
    pub _pad: u32,
}

const _: () = assert!(size_of::<RateWindow>() == 16);
