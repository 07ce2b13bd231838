//! TCP retransmissions.

use crate::task::TaskInfo;

/// A TCP segment was sent again (`tcp:tcp_retransmit_skb`): after a retransmission timeout,
/// a fast retransmit, or a tail loss probe that resent the last segment. A SYN sent again
/// has `state` `SYN_SENT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RetransmitEvent {
    /// The socket's owner (valid when `flags` has `OWNER_KNOWN`).
    pub owner: TaskInfo,
    /// `CLOCK_BOOTTIME` nanoseconds of the retransmission.
    pub ts_ns: u64,
    /// Kernel address of the `struct sock`.
    pub sock: u64,
    /// [`crate::flags`] bits.
    pub flags: u32,
    /// The socket's TCP state ([`crate::tcp::state`]).
    pub state: u16,
    /// Address family (`AF_INET` or `AF_INET6`).
    pub family: u16,
    /// Local port, host byte order.
    pub sport: u16,
    /// Remote port, host byte order.
    pub dport: u16,
    /// Segments resent: one, or more for a TSO/GSO buffer resent as one; 0 when unknown
    /// (the classic hook).
    pub segments: u16,
    /// Explicit padding (always zero).
    pub _pad: u16,
    /// Local address (IPv4 in the first 4 bytes).
    pub saddr: [u8; 16],
    /// Remote address (IPv4 in the first 4 bytes).
    pub daddr: [u8; 16],
}

const _: () = assert!(size_of::<RetransmitEvent>() == 128);

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, explicit padding.
unsafe impl aya::Pod for RetransmitEvent {}
