//! Wire types shared by netspy's kernel programs and its userspace.
//!
//! Every type is `#[repr(C)]`, `Copy`, made of integers and byte arrays only, with explicit
//! padding, and has its size asserted next to it: the kernel writes exactly these bytes into
//! the ring buffers and userspace decodes them once, in `netspy::events`.
//!
//! # Layout
//! - [`task`]: who did it (process, thread, uid, cgroup, command), embedded in every event.
//! - [`connect`]: one `connect(2)` call, built when it returns.
//! - [`tcp`]: the outcome of a TCP connect (leaving `SYN_SENT`), with latency.
//! - [`drop`]: one packet drop (`kfree_skb` with a drop reason).
//! - [`dns`]: one host-name lookup (`getaddrinfo` in the C library).
//! - [`retransmit`]: one TCP segment sent again.
//! - [`config`]: load-time globals written by userspace (kernel offsets, filters).
//! - [`counters`]: indexes of the per-CPU counter map (lost events, probe errors).
//! - [`ring`]: how the ring buffers wake their reader.
#![no_std]

pub mod config;
pub mod connect;
pub mod counters;
pub mod dns;
pub mod drop;
pub mod retransmit;
pub mod ring;
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

/// IP protocol numbers (`IPPROTO_*`), as `sk_protocol` and IP headers carry them.
pub mod proto {
    /// `IPPROTO_ICMP`.
    pub const IPPROTO_ICMP: u16 = 1;
    /// `IPPROTO_ICMPV6`.
    pub const IPPROTO_ICMPV6: u16 = 58;
    /// `IPPROTO_SCTP`.
    pub const IPPROTO_SCTP: u16 = 132;
    /// `IPPROTO_UDPLITE`.
    pub const IPPROTO_UDPLITE: u16 = 136;
    /// `IPPROTO_RAW`: never the protocol of a socket that connects.
    pub const IPPROTO_RAW: u16 = 255;
    /// `IPPROTO_TCP`.
    pub const IPPROTO_TCP: u16 = 6;
    /// `IPPROTO_UDP`.
    pub const IPPROTO_UDP: u16 = 17;
    /// `IPPROTO_MPTCP` (a socket protocol only; MPTCP packets are TCP on the wire).
    pub const IPPROTO_MPTCP: u16 = 262;
}

/// Socket types (`SOCK_*`), as `sk->sk_type` carries them.
pub mod sock_type {
    /// `SOCK_STREAM`.
    pub const STREAM: u16 = 1;
    /// `SOCK_DGRAM`.
    pub const DGRAM: u16 = 2;
    /// `SOCK_RAW`.
    pub const RAW: u16 = 3;
    /// `SOCK_RDM`.
    pub const RDM: u16 = 4;
    /// `SOCK_SEQPACKET`.
    pub const SEQPACKET: u16 = 5;
    /// `SOCK_DCCP`.
    pub const DCCP: u16 = 6;
    /// `SOCK_PACKET`.
    pub const PACKET: u16 = 10;
}

/// errno values the programs and userspace both test (stable ABI).
pub mod errno {
    /// `EINPROGRESS`: a non-blocking connect under way, not a failure.
    pub const EINPROGRESS: i32 = 115;
}

/// The record every syscall tracepoint writes (`struct syscall_trace_enter` /
/// `syscall_trace_exit` in kernel/trace/trace_syscalls.c): the same for every syscall and
/// unchanged since 2.6.33, so the programs load its fields at these fixed offsets (a plain
/// load, which the verifier accepts only at a constant offset of the context); userspace
/// checks them against the tracepoints' format files before loading.
pub mod syscall_record {
    /// `args[0]` of a `sys_enter_*` record; `args[i]` is 8 bytes further per argument.
    pub const ARGS: u32 = 16;
    /// `ret` of a `sys_exit_*` record.
    pub const RET: u32 = 16;
}

/// Bits of the `flags` field of [`tcp::TcpOutcomeEvent`], [`drop::DropEvent`] and
/// [`retransmit::RetransmitEvent`].
pub mod flags {
    /// The socket's owning process was known (recorded at connect time).
    pub const OWNER_KNOWN: u32 = 1;
    /// A drop's ports were read from its transport header (TCP or UDP, and the header is in
    /// this packet: not a later fragment, not behind too many IPv6 extension headers).
    pub const PORTS_KNOWN: u32 = 2;
}
