//! Who sent a datagram that lost its socket. Loopback and veth orphan a packet on transmit,
//! so a datagram refused by a closed local port is dropped (NO_SOCKET) with no socket to
//! name its owner; a UDP client that never connects (sendto/sendmsg only) has no connect
//! event to tell its 4-tuple either. But the receive path usually runs in softirq on the
//! sender's own stack, inside its send call: when the current task is in `sendto`,
//! `sendmsg` or `sendmmsg` on a UDP socket bound to the packet's source port, that socket
//! sent it. Checked, never assumed: the syscall number and file descriptor come from the
//! task's saved user registers; the socket must be of the packet's family, bound to its
//! source port, and to its source address (a socket bound to any address: the packet's
//! source must be loopback, so that a datagram from elsewhere that reached the same softirq
//! with a colliding source port is not taken for its). A drop run elsewhere (ksoftirqd,
//! another CPU's backlog) fails the check and stays unattributed.

use netspy_common::{config::ABSENT, drop::DropEvent, family, proto::IPPROTO_UDP, task::TaskInfo};

use crate::{
    btf::Typed,
    kernel::{config, task_info},
    socket::{addresses, addresses_v6, socket_of_fd},
};

const IPV6_LOOPBACK: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The current task, when it is sending on the UDP socket `ev`'s datagram came from.
#[inline(always)]
pub fn current_sender(ev: &DropEvent) -> Option<TaskInfo> {
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
    if sock.protocol != IPPROTO_UDP {
        return None;
    }
    let addrs = addresses(sock.sk)?;
    if addrs.num != ev.sport || addrs.family != ev.family {
        return None;
    }
    let bound_to_source = match ev.family {
        family::INET => {
            let source = [ev.saddr[0], ev.saddr[1], ev.saddr[2], ev.saddr[3]];
            addrs.rcv_saddr == source || (addrs.rcv_saddr == [0; 4] && source[0] == 127)
        }
        family::INET6 => {
            let bound = addresses_v6(sock.sk)?.rcv_saddr;
            bound == ev.saddr || (bound == [0; 16] && ev.saddr == IPV6_LOOPBACK)
        }
        _ => false,
    };
    // Not `bool::then` with a closure: the closure is not inlined, and the verifier refuses
    // its 64-byte result returned through its own stack.
    if bound_to_source {
        Some(task_info(task))
    } else {
        None
    }
}
