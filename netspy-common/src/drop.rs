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

const _: () = assert!(size_of::<DropEvent>() == 120);

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, explicit padding.
unsafe impl aya::Pod for DropEvent {}
