//! TCP connect outcomes.

use crate::task::TaskInfo;

/// TCP states (`include/net/tcp_states.h`); stable kernel ABI.
pub mod state {
    /// `TCP_ESTABLISHED`.
    pub const ESTABLISHED: u32 = 1;
    /// `TCP_SYN_SENT`.
    pub const SYN_SENT: u32 = 2;
    /// `TCP_SYN_RECV`.
    pub const SYN_RECV: u32 = 3;
    /// `TCP_FIN_WAIT1`.
    pub const FIN_WAIT1: u32 = 4;
    /// `TCP_FIN_WAIT2`.
    pub const FIN_WAIT2: u32 = 5;
    /// `TCP_TIME_WAIT`.
    pub const TIME_WAIT: u32 = 6;
    /// `TCP_CLOSE`.
    pub const CLOSE: u32 = 7;
    /// `TCP_CLOSE_WAIT`.
    pub const CLOSE_WAIT: u32 = 8;
    /// `TCP_LAST_ACK`.
    pub const LAST_ACK: u32 = 9;
    /// `TCP_LISTEN`.
    pub const LISTEN: u32 = 10;
    /// `TCP_CLOSING`.
    pub const CLOSING: u32 = 11;
    /// `TCP_NEW_SYN_RECV`.
    pub const NEW_SYN_RECV: u32 = 12;
}

/// A TCP socket left `SYN_SENT`: the real result of a connect, blocking or not.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TcpOutcomeEvent {
    /// The process that opened the connection (valid when `flags` has `OWNER_KNOWN`).
    pub owner: TaskInfo,
    /// `CLOCK_BOOTTIME` nanoseconds of the state change.
    pub ts_ns: u64,
    /// `SYN_SENT` to this state, in nanoseconds (0 when `SYN_SENT` was not seen).
    pub latency_ns: u64,
    /// Kernel address of the `struct sock`.
    pub sock: u64,
    /// State left (always `SYN_SENT` today).
    pub oldstate: u32,
    /// State entered (`ESTABLISHED`, `CLOSE`, ...).
    pub newstate: u32,
    /// `sk->sk_err` at the change: why a connect failed (`ECONNREFUSED`, `ETIMEDOUT`), or 0.
    pub error: u32,
    /// [`crate::flags`] bits.
    pub flags: u32,
    /// Address family (`AF_INET` or `AF_INET6`).
    pub family: u16,
    /// Local port, host byte order.
    pub sport: u16,
    /// Remote port, host byte order.
    pub dport: u16,
    /// Explicit padding (always zero).
    pub _pad: u16,
    /// Local address (IPv4 in the first 4 bytes).
    pub saddr: [u8; 16],
    /// Remote address (IPv4 in the first 4 bytes).
    pub daddr: [u8; 16],
}

const _: () = assert!(size_of::<TcpOutcomeEvent>() == 144);

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, explicit padding.
unsafe impl aya::Pod for TcpOutcomeEvent {}
