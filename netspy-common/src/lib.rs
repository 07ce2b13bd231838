//! Wire types shared by netspy's kernel programs and its userspace.
//!
//! Every type is `#[repr(C)]`, `Copy`, made of integers and byte arrays only, with explicit
//! padding, and has its size asserted next to it: the kernel writes exactly these bytes into
//! the ring buffers and userspace decodes them once, in `netspy::events`.
//!
//! # Layout
//! - [`task`]: who did it (process, thread, uid, cgroup, command), embedded in every event.
//! - [`connect`]: one `connect(2)` call, joined from its enter and exit tracepoints.
//! - [`tcp`]: the outcome of a TCP connect (leaving `SYN_SENT`), with latency.
//! - [`drop`]: one packet drop (`kfree_skb` with a drop reason).
//! - [`config`]: load-time globals written by userspace (kernel offsets, filters).
//! - [`counters`]: indexes of the per-CPU counter map (lost events, probe errors).
#![no_std]

pub mod config;
pub mod connect;
pub mod counters;
pub mod drop;
pub mod task;
pub mod tcp;

/// Address families as the kernel numbers them (`AF_*`).
pub mod family {
    /// `AF_UNIX`.
    pub const UNIX: u16 = 1;
    /// `AF_INET`.
    pub const INET: u16 = 2;
    /// `AF_INET6`.
    pub const INET6: u16 = 10;
}

/// Bits of the `flags` field of [`tcp::TcpOutcomeEvent`] and [`drop::DropEvent`].
pub mod flags {
    /// The socket's owning process was known (recorded at connect time).
    pub const OWNER_KNOWN: u32 = 1;
    /// A drop's ports were read from its transport header (TCP or UDP, and the header is in
    /// this packet: not a later fragment, not behind too many IPv6 extension headers).
    pub const PORTS_KNOWN: u32 = 2;
}
