//! `connect(2)`: `sys_enter_connect` records the destination and the socket behind the fd,
//! `sys_exit_connect` adds the return value and emits one `ConnectEvent`.
//!
//! Kernel: `SYSCALL_DEFINE3(connect, int, fd, struct sockaddr __user *, uservaddr, int, addrlen)`
//! <https://elixir.bootlin.com/linux/v6.18/source/net/socket.c#L2110>.
//! Minimum kernel: 5.8 (ring buffers), 5.5 (`bpf_probe_read_user`).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated},
    macros::tracepoint,
    programs::TracePointContext,
};
use netspy_common::{
    config::ABSENT,
    connect::{ConnectEvent, UNIX_PATH_LEN},
    counters, family,
};

use crate::{
    kernel::{
        Failure, config, current_task, ignored, now_ns, output_flags, read_field, read_kernel, run,
    },
    maps::{CONNECT_EVENTS, PENDING_CONNECTS},
    owners,
    socket::socket_of_fd,
};

#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    run(|| try_sys_enter_connect(&ctx))
}

fn try_sys_enter_connect(ctx: &TracePointContext) -> Result<(), Failure> {
    let task = current_task();
    if ignored(task.tgid) {
        return Ok(());
    }
    // Syscall arguments are 8 bytes wide in the record whatever their C type.
    let fd: u64 = read_field(ctx, config(|c| &c.tp_connect_fd))?;
    let uaddr: u64 = read_field(ctx, config(|c| &c.tp_connect_uservaddr))?;
    let addrlen: u64 = read_field(ctx, config(|c| &c.tp_connect_addrlen))?;
    let mut ev = ConnectEvent {
        task,
        ts_ns: now_ns(),
        syscall_ns: 0,
        sock: 0,
        ret: 0,
        fd: fd as u32,
        addrlen: addrlen as u32,
        family: 0,
        dport: 0,
        sock_type: 0,
        protocol: 0,
        daddr: [0; 16],
        path: [0; UNIX_PATH_LEN],
        _pad: [0; 4],
        saddr: [0; 16],
        sport: 0,
        _pad2: [0; 6],
    };
    read_destination(&mut ev, uaddr, addrlen);
    if let Some(sock) = socket_of_fd(fd) {
        ev.sock = sock.sk;
        ev.sock_type = sock.sock_type;
        ev.protocol = sock.protocol;
        // A TCP socket's owner is recorded at SYN_SENT, inside this same call (tcp.rs).
        if (ev.family == family::INET || ev.family == family::INET6) && sock.protocol != IPPROTO_TCP
        {
            owners::remember(sock.sk, sock.socket, task, 0);
        }
    }
    PENDING_CONNECTS
        .insert(&bpf_get_current_pid_tgid(), &ev, 0)
        .map_err(|_| Failure(counters::PENDING_FULL))
}

/// Copies family, address and port (or UNIX path) out of the user's sockaddr. A bad pointer
/// leaves them zero: the syscall itself then fails with EFAULT, which the event reports.
#[inline(always)]
fn read_destination(ev: &mut ConnectEvent, uaddr: u64, addrlen: u64) {
    // One user-memory read for the fixed part (each read costs ~120 ns): sockaddr_in6 (28
    // bytes) is the largest IP sockaddr; shorter ones are read as far as the caller passed.
    let mut raw = [0u8; 28];
    let len: u32 = if addrlen >= 28 {
        28
    } else if addrlen >= 16 {
        16
    } else if addrlen >= 2 {
        2
    } else {
        return;
    };
    // SAFETY: `len` <= the buffer's size; bpf_probe_read_user checks the user address.
    let read =
        unsafe { generated::bpf_probe_read_user(raw.as_mut_ptr().cast(), len, uaddr as *const _) };
    if read != 0 {
        return;
    }
    let fam = u16::from_ne_bytes([raw[0], raw[1]]);
    ev.family = fam;
    match fam {
        family::INET if len >= 16 => {
            ev.dport = u16::from_be_bytes([raw[2], raw[3]]);
            ev.daddr[..4].copy_from_slice(&raw[4..8]);
        }
        family::INET6 if len >= 28 => {
            ev.dport = u16::from_be_bytes([raw[2], raw[3]]);
            ev.daddr.copy_from_slice(&raw[8..24]);
        }
        family::UNIX => {
            // Read only what the caller passed: sun_path may end right at addrlen.
            let mut len = addrlen.saturating_sub(2);
            if len > UNIX_PATH_LEN as u64 {
                len = UNIX_PATH_LEN as u64;
            }
            // SAFETY: `len` <= sun_path's size, the destination is our own buffer.
            unsafe {
                generated::bpf_probe_read_user(
                    ev.path.as_mut_ptr().cast(),
                    len as u32,
                    (uaddr + 2) as *const _,
                )
            };
        }
        _ => {}
    }
}

const EINPROGRESS: i64 = 115;
const IPPROTO_TCP: u16 = 6;

/// The local address and port the call gave the socket (an IP socket is bound by connect
/// when it was not before): a packet it sent and lost on the way can then be traced back.
#[inline(always)]
fn read_source(ev: &mut ConnectEvent) {
    let sk = ev.sock;
    let (port, v4, v6) = (
        config(|c| &c.sock_num),
        config(|c| &c.sock_rcv_saddr),
        config(|c| &c.sock_v6_rcv_saddr),
    );
    if port == ABSENT {
        return;
    }
    ev.sport = read_kernel(sk + port as u64).unwrap_or(0);
    if ev.family == family::INET && v4 != ABSENT {
        let addr: [u8; 4] = read_kernel(sk + v4 as u64).unwrap_or([0; 4]);
        ev.saddr[..4].copy_from_slice(&addr);
    } else if ev.family == family::INET6 && v6 != ABSENT {
        ev.saddr = read_kernel(sk + v6 as u64).unwrap_or([0; 16]);
    }
}

#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    run(|| try_sys_exit_connect(&ctx))
}

fn try_sys_exit_connect(ctx: &TracePointContext) -> Result<(), Failure> {
    let id = bpf_get_current_pid_tgid();
    let Some(pending) = PENDING_CONNECTS.get_ptr_mut(&id) else {
        return Ok(()); // ignored process, or the enter was lost (counted there)
    };
    let ret: i64 = read_field(ctx, config(|c| &c.tp_connect_ret))?;
    let now = now_ns();
    // SAFETY: a map value pointer stays valid for this program run; only this thread's
    // syscall uses its key.
    let ev = unsafe { &mut *pending };
    ev.ret = ret;
    ev.syscall_ns = now.saturating_sub(ev.ts_ns);
    ev.ts_ns = now;
    if ev.sock != 0 && (ret == 0 || ret == -EINPROGRESS) {
        read_source(ev);
    }
    let sent = CONNECT_EVENTS.output::<ConnectEvent>(
        &*ev,
        output_flags(&CONNECT_EVENTS, size_of::<ConnectEvent>()),
    );
    let _ = PENDING_CONNECTS.remove(&id);
    sent.map_err(|_| Failure(counters::LOST_CONNECT))
}
