//! Name lookups: one record per `getaddrinfo(3)` call that asked for a host name, built
//! when the call returns (uprobe at entry, uretprobe at return, in the C library).

use crate::task::TaskInfo;

/// Bytes of the host name kept (a DNS name has at most 253 characters).
pub const NAME_LEN: usize = 256;

/// Distinct addresses kept from the answer list (the rest are counted in `more`).
pub const MAX_ANSWERS: usize = 8;

/// `addrinfo` entries walked at most: the C library returns one entry per address and
/// socket type (three per address when the caller gave no hints).
pub const MAX_ENTRIES: u32 = 32;

/// [`DnsEvent::flags`] bits.
pub mod dns_flags {
    /// The name was longer than [`super::NAME_LEN`] - 1 bytes and is cut.
    pub const NAME_CUT: u8 = 1;
    /// The answer list was longer than [`super::MAX_ENTRIES`] entries.
    pub const ENTRIES_CUT: u8 = 2;
}

/// One `getaddrinfo` call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DnsEvent {
    /// The calling task.
    pub task: TaskInfo,
    /// `CLOCK_BOOTTIME` nanoseconds at the call's return.
    pub ts_ns: u64,
    /// Time inside the call, nanoseconds.
    pub latency_ns: u64,
    /// What the call returned: 0, or an `EAI_*` code (negative in glibc and musl).
    pub ret: i32,
    /// Distinct addresses in `answers`.
    pub answers: u8,
    /// Addresses left out because `answers` was full.
    pub more: u8,
    /// [`dns_flags`] bits.
    pub flags: u8,
    /// Explicit padding (always zero).
    pub _pad: u8,
    /// Family of each answer (`AF_INET` or `AF_INET6`).
    pub families: [u16; MAX_ANSWERS],
    /// The answers: IPv4 in the first 4 bytes, or IPv6.
    pub addrs: [[u8; 16]; MAX_ANSWERS],
    /// The host name asked for, NUL-terminated.
    pub name: [u8; NAME_LEN],
}

const _: () = assert!(size_of::<DnsEvent>() == 488);
// It shares the connects' ring, where a record's size tells its type.
const _: () = assert!(size_of::<DnsEvent>() != size_of::<crate::connect::ConnectEvent>());
const _: () = assert!(size_of::<DnsEvent>() != size_of::<crate::connect::UnixConnectEvent>());

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, explicit padding.
unsafe impl aya::Pod for DnsEvent {}
