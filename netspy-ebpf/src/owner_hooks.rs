//! Programs that only teach `SOCK_OWNERS` who owns a socket, for sockets that never call
//! `connect(2)`: created by `socket(2)` (a UDP client using `sendto`), bound by `bind(2)`
//! (UDP receivers, listeners; also refreshes the owner of a socket passed on by its
//! creator) and returned by `accept(2)`/`accept4(2)`. Drops on them (a full receive queue, a
//! zero window) are then attributed like a connecting socket's.
//!
//! Kernel: `SYSCALL_DEFINE3(socket, int, family, int, type, int, protocol)`,
//! `SYSCALL_DEFINE3(bind, int, fd, struct sockaddr __user *, umyaddr, int, addrlen)`,
//! `SYSCALL_DEFINE4(accept4, int, fd, struct sockaddr __user *, upeer_sockaddr, int __user *,
//! upeer_addrlen, int, flags)` <https://elixir.bootlin.com/linux/v6.18/source/net/socket.c>.

use crate::{
    btf::Typed,
    kernel::{Failure, run, syscall_arg, syscall_ret, task_info},
    owners,
    socket::socket_of_fd,
};
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};

#[tracepoint]
pub fn sys_exit_socket(ctx: TracePointContext) -> u32 {
    run(|| remember_fd_owner(syscall_ret(&ctx)))
}

#[tracepoint]
pub fn sys_enter_bind(ctx: TracePointContext) -> u32 {
    // Recorded on entry: the socket exists already, and a failed bind leaves the right owner.
    run(|| remember_fd_owner(syscall_arg::<0>(&ctx) as i64))
}

#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    run(|| remember_fd_owner(syscall_ret(&ctx)))
}

#[tracepoint]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    run(|| remember_fd_owner(syscall_ret(&ctx)))
}

/// Remembers the current task as the owner of the socket behind `fd` (a syscall argument or
/// return value; negative means the call failed).
#[inline(always)]
fn remember_fd_owner(fd: i64) -> Result<(), Failure> {
    if fd < 0 {
        return Ok(());
    }
    let task = Typed::current_task();
    let info = task_info(task);
    // UNIX sockets (protocol 0) carry no IP drops worth an entry in the bounded map.
    if let Some(sock) = socket_of_fd(task, fd as u64)
        && sock.protocol != 0
    {
        // netspy's own sockets too: their drops are then recognised and skipped, instead of
        // reported unattributed.
        owners::remember(sock.sk, sock.socket, info, 0);
    }
    Ok(())
}
