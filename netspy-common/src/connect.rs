//! `connect(2)` events: one compact record per call, with the UNIX path only in the records
//! of UNIX sockets (the ring holds almost twice as many IP connects that way).

use crate::task::TaskInfo;

/// Length of `sockaddr_un.sun_path`.
pub const UNIX_PATH_LEN: usize = 108;

/// [`ConnectEvent::flags`] bits.
pub mod connect_flags {
    /// `syscall_ns` was measured (the enter + exit hook; the one-program hook sees only the
    /// exit).
    pub const SYSCALL_TIME_KNOWN: u16 = 1;
}

/// One `connect(2)` call, built when it returns.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnectEvent {
    /// The calling task.
    pub task: TaskInfo,
    /// `CLOCK_BOOTTIME` nanoseconds at syscall exit.
    pub ts_ns: u64,
    /// Time spent inside the syscall, in nanoseconds (with `SYSCALL_TIME_KNOWN`).
    pub syscall_ns: u64,
    /// Kernel address of the `struct sock` behind the fd (0 when the fd is not a socket);
    /// joins this event with TCP outcomes and drops.
    pub sock: u64,
    /// Syscall return value (0 or a negative errno).
    pub ret: i64,
    /// The file descriptor passed to `connect`.
    pub fd: u32,
    /// `addrlen` passed to `connect` (for UNIX sockets it bounds the path).
    pub addrlen: u32,
    /// Address family of the destination (`AF_*`), read from the user's sockaddr.
    pub family: u16,
    /// Destination port, host byte order (IP families only).
    pub dport: u16,
    /// The socket's real type (`sk->sk_type`, e.g. `SOCK_STREAM`), 0 when unknown.
    pub sock_type: u16,
    /// The socket's real protocol (`sk->sk_protocol`, e.g. `IPPROTO_TCP`), 0 when unknown.
    pub protocol: u16,
    /// Destination address: IPv4 in the first 4 bytes, or IPv6.
    pub daddr: [u8; 16],
    /// The socket's local address after the call (IP families, when it succeeded or is in
    /// progress): IPv4 in the first 4 bytes, or IPv6.
    pub saddr: [u8; 16],
    /// The socket's local port after the call, host byte order; 0 when unknown.
    pub sport: u16,
    /// [`connect_flags`] bits.
    pub flags: u16,
    /// Explicit padding (always zero).
    pub _pad: [u8; 4],
}

const _: () = assert!(size_of::<ConnectEvent>() == 152);

/// A `connect(2)` to a UNIX socket: the call and the path.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UnixConnectEvent {
    /// The call.
    pub connect: ConnectEvent,
    /// `sun_path` (abstract names start with a NUL byte); `connect.addrlen` bounds it.
    pub path: [u8; UNIX_PATH_LEN],
    /// Explicit padding (always zero).
    pub _pad: [u8; 4],
}

const _: () = assert!(size_of::<UnixConnectEvent>() == 264);

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, explicit padding.
unsafe impl aya::Pod for ConnectEvent {}

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and arrays only, explicit padding.
unsafe impl aya::Pod for UnixConnectEvent {}
