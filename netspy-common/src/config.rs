//! Load-time configuration of the kernel programs.
//!
//! Rust eBPF has no CO-RE field relocations yet, so userspace reads structure and tracepoint
//! field offsets from the running kernel (BTF and tracefs) and writes them into this `.rodata`
//! global before loading; the verifier then sees them as constants.

/// Every offset and filter the kernel programs need. An offset of [`ABSENT`] means the field
/// does not exist on this kernel and the program must do without it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Process id whose events are ignored (netspy itself), 0 = none.
    pub ignore_tgid: u32,
    /// Processes of this name (NUL-padded, as `comm`) whose executable's inode number is
    /// `self_exe_ino_*` are netspy's own clients: their events are ignored too. All zero =
    /// none.
    pub self_comm: [u32; 4],
    /// Inode number of netspy's executable, low 32 bits.
    pub self_exe_ino_low: u32,
    /// Inode number of netspy's executable, high 32 bits.
    pub self_exe_ino_high: u32,
    /// When the programs wake the ring buffers' reader: a [`crate::ring::wakeup`] policy.
    pub ring_wakeup: u32,
    /// Full drop events each CPU sends per [`crate::drop::RATE_WINDOW_NS`]; the drops past
    /// that are counted by reason and owner (sampled out). 0 = no limit.
    pub drop_events_per_window: u32,
    /// `SKB_NOT_DROPPED_YET` on this kernel ([`ABSENT`] on kernels that name no drop
    /// reasons, like the next).
    pub reason_not_dropped: u32,
    /// `SKB_CONSUMED` on this kernel (a normal free, not a drop).
    pub reason_consumed: u32,
    /// `task_struct.pid` (the thread id).
    pub task_pid: u32,
    /// `task_struct.tgid` (the process id).
    pub task_tgid: u32,
    /// `task_struct.comm` (16 bytes).
    pub task_comm: u32,
    /// `task_struct.group_leader` (the process's main thread).
    pub task_group_leader: u32,
    /// `task_struct.start_boottime`, [`ABSENT`] when unknown (events then carry start 0).
    pub task_start_boottime: u32,
    /// `task_struct.mm`, [`ABSENT`] when this kernel's BTF lacks any member of the path to
    /// the executable's inode (netspy's clients are then reported like any process).
    pub task_mm: u32,
    /// `mm_struct.exe_file`.
    pub mm_exe_file: u32,
    /// `file.f_inode`.
    pub file_inode: u32,
    /// `task_struct.cred`.
    pub task_cred: u32,
    /// `cred.uid`.
    pub cred_uid: u32,
    /// `task_struct.cgroups`, [`ABSENT`] without cgroups (events then carry cgroup id 0).
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp`.
    pub css_set_dfl_cgrp: u32,
    /// `cgroup.kn`.
    pub cgroup_kn: u32,
    /// `kernfs_node.id` (the cgroup id: the inode number of its v2 directory).
    pub kernfs_node_id: u32,
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
    /// `tcp/tcp_retransmit_skb` field `skaddr`, [`ABSENT`] when that record is not as
    /// netspy reads it (the classic hook is then refused).
    pub tp_retransmit_skaddr: u32,
    /// Its field `err` (Linux 6.10+, which also traces attempts that sent nothing),
    /// [`ABSENT`] before; also whether the `tp_btf` hook has that third argument.
    pub tp_retransmit_err: u32,
    /// Where a TCP `sk_buff` keeps its segment count (`cb` + `tcp_skb_cb.tcp_gso_segs`),
    /// [`ABSENT`] when unknown (retransmissions then carry none).
    pub skb_tcp_gso_segs: u32,
    /// Where [`SockAddrs`] starts in `struct sock` (`__sk_common.skc_daddr`), [`ABSENT`]
    /// when this kernel lays those fields out otherwise (connects then carry no local
    /// address, and their destination is read from the caller's sockaddr).
    pub sock_addrs: u32,
    /// Where [`SockAddrsV6`] starts in `struct sock` (`__sk_common.skc_v6_daddr`), [`ABSENT`]
    /// without IPv6 or with another layout.
    pub sock_v6_addrs: u32,
    /// `sock.sk_socket`.
    pub sock_socket: u32,
    /// Where a `struct socket`'s inode sits relative to it: `socket_alloc.vfs_inode` minus
    /// `socket_alloc.socket` (every socket is allocated inside a `socket_alloc`).
    pub socket_inode: u32,
    /// `inode.i_ino`.
    pub inode_ino: u32,
    /// Where the saved user registers (`struct pt_regs`) keep a syscall's first three
    /// arguments on this architecture: `fd`, `uservaddr` and `addrlen` of `connect(2)`;
    /// [`ABSENT`] when not known (the one-program connect hook is then refused, and enter +
    /// exit used).
    pub regs_arg0: u32,
    /// See `regs_arg0`.
    pub regs_arg1: u32,
    /// See `regs_arg0`.
    pub regs_arg2: u32,
    /// Where the saved user registers keep the number of the syscall the task is in (x86_64
    /// `orig_ax`, arm64 `syscallno`; its low 32 bits), [`ABSENT`] when not known (drops of
    /// datagrams that lost their socket are then not checked against their sender).
    pub regs_syscall_nr: u32,
    /// `sendto(2)`'s number on this architecture.
    pub nr_sendto: u32,
    /// `sendmsg(2)`'s number.
    pub nr_sendmsg: u32,
    /// `sendmmsg(2)`'s number.
    pub nr_sendmmsg: u32,
}

/// The start of `struct sock_common`, read in one go: the connected socket's addresses and
/// ports (laid out together for the kernel's own lookups since 2.6; userspace checks the
/// running kernel's BTF before it sets [`Config::sock_addrs`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SockAddrs {
    /// `skc_daddr`: the peer's IPv4 address.
    pub daddr: [u8; 4],
    /// `skc_rcv_saddr`: the local IPv4 address.
    pub rcv_saddr: [u8; 4],
    /// `skc_hash`.
    pub hash: u32,
    /// `skc_dport`: the peer's port, network byte order.
    pub dport: [u8; 2],
    /// `skc_num`: the local port, host byte order.
    pub num: u16,
    /// `skc_family`.
    pub family: u16,
    /// `skc_state` (the low byte) and the bit fields after it.
    pub state: u16,
}

const _: () = assert!(size_of::<SockAddrs>() == 20);

/// `sock_common`'s IPv6 addresses, adjacent since 3.13.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SockAddrsV6 {
    /// `skc_v6_daddr`: the peer's address.
    pub daddr: [u8; 16],
    /// `skc_v6_rcv_saddr`: the local address.
    pub rcv_saddr: [u8; 16],
}

const _: () = assert!(size_of::<SockAddrsV6>() == 32);

/// Offset value meaning "this field does not exist on the running kernel".
pub const ABSENT: u32 = u32::MAX;

const _: () = assert!(size_of::<Config>() == 69 * 4);

impl Config {
    /// Nothing known yet: every offset and number [`ABSENT`], no process ignored, no limit.
    /// Userspace starts from it, so a fact nothing learns leaves the hooks that need it
    /// refused rather than reading at offset 0.
    pub const UNKNOWN: Self = {
        // SAFETY: `Config` is repr(C) with u32 fields only and no padding (its size is
        // asserted above), so any u32 values make a valid `Config`.
        let mut c: Self = unsafe { core::mem::transmute([ABSENT; size_of::<Config>() / 4]) };
        c.ignore_tgid = 0;
        c.self_comm = [0; 4];
        c.self_exe_ino_low = 0;
        c.self_exe_ino_high = 0;
        c.ring_wakeup = 0;
        c.drop_events_per_window = 0;
        c
    };
}

#[cfg(feature = "user")]
// SAFETY: repr(C), u32 fields only.
unsafe impl aya::Pod for Config {}
