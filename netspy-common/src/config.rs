//! Load-time configuration of the kernel programs.
//!
//! Rust eBPF has no CO-RE field relocations yet, so userspace reads structure and tracepoint
//! field offsets from the running kernel (BTF and tracefs) and writes them into this `.rodata`
//! global before loading; the verifier then sees them as constants.

/// Every offset and filter the kernel programs need. An offset of [`ABSENT`] means the field
/// does not exist on this kernel and the program must do without it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Process id whose events are ignored (netspy itself), 0 = none.
    pub ignore_tgid: u32,
    /// `SKB_NOT_DROPPED_YET` on this kernel.
    pub reason_not_dropped: u32,
    /// `SKB_CONSUMED` on this kernel (a normal free, not a drop).
    pub reason_consumed: u32,
    /// `task_struct.files`.
    pub task_files: u32,
    /// `files_struct.fdt`.
    pub files_fdt: u32,
    /// `fdtable.fd`.
    pub fdtable_fd: u32,
    /// `fdtable.max_fds`.
    pub fdtable_max_fds: u32,
    /// `file.private_data`.
    pub file_private_data: u32,
    /// `socket.file`.
    pub socket_file: u32,
    /// `socket.sk`.
    pub socket_sk: u32,
    /// `sock.sk_type` (u16).
    pub sock_type: u32,
    /// `sock.sk_protocol` (u16).
    pub sock_protocol: u32,
    /// `sock.sk_err` (int).
    pub sock_err: u32,
    /// `sk_buff.head`.
    pub skb_head: u32,
    /// `sk_buff.network_header` (u16).
    pub skb_network_header: u32,
    /// `sk_buff.sk`.
    pub skb_sk: u32,
    /// `sk_buff.protocol` (be16).
    pub skb_protocol: u32,
    /// Tracepoint `sys_enter_connect`: `fd`, `uservaddr`, `addrlen`.
    pub tp_connect_fd: u32,
    /// See `tp_connect_fd`.
    pub tp_connect_uservaddr: u32,
    /// See `tp_connect_fd`.
    pub tp_connect_addrlen: u32,
    /// Tracepoint `sys_exit_connect`: `ret`.
    pub tp_connect_ret: u32,
    /// Tracepoint `inet_sock_set_state`: `skaddr`.
    pub tp_state_skaddr: u32,
    /// `oldstate` (int).
    pub tp_state_oldstate: u32,
    /// `newstate` (int).
    pub tp_state_newstate: u32,
    /// `sport` (u16, host order).
    pub tp_state_sport: u32,
    /// `dport` (u16, host order).
    pub tp_state_dport: u32,
    /// `family` (u16).
    pub tp_state_family: u32,
    /// `protocol` (u16).
    pub tp_state_protocol: u32,
    /// `saddr_v6` (16 bytes; IPv4 sockets carry a v4-mapped address here).
    pub tp_state_saddr_v6: u32,
    /// `daddr_v6` (16 bytes).
    pub tp_state_daddr_v6: u32,
    /// `saddr` (4 bytes).
    pub tp_state_saddr: u32,
    /// `daddr` (4 bytes).
    pub tp_state_daddr: u32,
    /// Tracepoint `kfree_skb`: `skbaddr`.
    pub tp_drop_skbaddr: u32,
    /// `location`.
    pub tp_drop_location: u32,
    /// `reason` (u32), [`ABSENT`] before Linux 5.17.
    pub tp_drop_reason: u32,
    /// `rx_sk`, [`ABSENT`] before Linux 6.10.
    pub tp_drop_rx_sk: u32,
    /// `sock.__sk_common.skc_num` (local port, host order, u16).
    pub sock_num: u32,
    /// `sock.__sk_common.skc_rcv_saddr` (local IPv4 address).
    pub sock_rcv_saddr: u32,
    /// `sock.__sk_common.skc_v6_rcv_saddr` (local IPv6 address), [`ABSENT`] without IPv6.
    pub sock_v6_rcv_saddr: u32,
    /// `sock.sk_socket`.
    pub sock_socket: u32,
    /// Where a `struct socket`'s inode sits relative to it: `socket_alloc.vfs_inode` minus
    /// `socket_alloc.socket` (every socket is allocated inside a `socket_alloc`).
    pub socket_inode: u32,
    /// `inode.i_ino`.
    pub inode_ino: u32,
    /// Tracepoint `sys_exit_socket`: `ret`; [`ABSENT`] when the tracepoint is.
    pub tp_socket_ret: u32,
    /// Tracepoint `sys_enter_bind`: `fd`; [`ABSENT`] when the tracepoint is.
    pub tp_bind_fd: u32,
    /// Tracepoint `sys_exit_accept`: `ret`; [`ABSENT`] when the tracepoint is.
    pub tp_accept_ret: u32,
    /// Tracepoint `sys_exit_accept4`: `ret`; [`ABSENT`] when the tracepoint is.
    pub tp_accept4_ret: u32,
}

/// Offset value meaning "this field does not exist on the running kernel".
pub const ABSENT: u32 = u32::MAX;

const _: () = assert!(size_of::<Config>() == 46 * 4);

#[cfg(feature = "user")]
// SAFETY: repr(C), u32 fields only.
unsafe impl aya::Pod for Config {}
