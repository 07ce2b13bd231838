//! Who sent a datagram that lost its socket. Loopback and veth orphan a packet on transmit,
//! so a datagram refused by a closed local port is dropped (NO_SOCKET) with no socket to
//! name its owner; a UDP client that never connects (sendto/sendmsg only) has no connect
//! event to tell its 4-tuple either. But the receive path usually runs in softirq on the
//! sender's own stack, inside its send call: when the current task is in `sendto`,
//! `sendmsg` or `sendmmsg` on a UDP socket bound to the packet's source port, that socket
//! sent it. Checked, never assumed: the syscall number and file descriptor come from the
//! task's saved user registers, and the socket's local port from the socket; a drop run
//! elsewhere (ksoftirqd, another CPU's backlog) fails the check and stays unattributed.

use netspy_common::{config::ABSENT, proto::IPPROTO_UDP, task::TaskInfo};

use crate::{
    btf::Typed,
    kernel::{config, task_info},
    socket::{addresses, socket_of_fd},
};

/// The current task, when it is sending on a UDP socket whose local port is `sport`.
#[inline(always)]
pub fn current_sender(sport: u16) -> Option<TaskInfo> {
    let (nr_at, fd_at) = (config(|c| &c.regs_syscall_nr), config(|c| &c.regs_arg0));
    if nr_at == ABSENT || fd_at == ABSENT {
        return None;
    }
    let task = Typed::current_task();
    let regs = task.user_registers();
    // The low 32 bits: x86_64's orig_ax (little-endian) or arm64's syscallno.
    let nr: u32 = regs.field(nr_at);
    if nr != config(|c| &c.nr_sendto)
        && nr != config(|c| &c.nr_sendmsg)
        && nr != config(|c| &c.nr_sendmmsg)
    {
        return None;
    }
    let fd: u64 = regs.field(fd_at);
    let sock = socket_of_fd(task, fd)?;
    if sock.protocol != IPPROTO_UDP || addresses(sock.sk)?.num != sport {
        return None;
    }
    Some(task_info(task))
}
