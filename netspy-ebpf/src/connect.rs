//! `connect(2)`, built in one program when the call returns: `connect_exit` on
//! `sys_exit_connect` finds the call's arguments in the task's saved user registers, so no
//! enter program, pending map or map update is on the path. Where those registers are not
//! known, `sys_enter_connect` keeps the arguments (and the start time) per thread and
//! `sys_exit_connect` completes the same event.
//!
//! A call that connected (or is connecting) has its addresses read from the socket, one
//! kernel read for destination and source; only failed calls and UNIX sockets read the
//! caller's sockaddr, since a user-memory read costs ~300 ns here (six kernel reads).
//!
//! Kernel: `SYSCALL_DEFINE3(connect, int, fd, struct sockaddr __user *, uservaddr, int, addrlen)`
//! <https://elixir.bootlin.com/linux/v6.18/source/net/socket.c#L2110>.
//! Minimum kernel: 5.15 (`bpf_task_pt_regs`) for `connect_exit`, 5.11
//! (`bpf_get_current_task_btf`) else.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated},
    macros::tracepoint,
    programs::TracePointContext,
};
use netspy_common::{
    config::ABSENT,
    connect::{ConnectEvent, UNIX_PATH_LEN, UnixConnectEvent, connect_flags},
    counters, family,
    proto::IPPROTO_TCP,
    ring::index as ring,
    task::TaskInfo,
};

use crate::{
    btf::Typed,
    kernel::{
        BPF_RB_NO_WAKEUP, Failure, config, ignored, ignored_tgid, now_ns, run, syscall_arg,
        syscall_ret, task_info, wakeup_flags, zeroed,
    },
    maps::{CONNECT_EVENTS, PENDING_CONNECTS, PendingConnect},
    owners,
    socket::{addresses, addresses_v6, socket_of_fd},
};

const EINPROGRESS: i64 = netspy_common::errno::EINPROGRESS as i64;

/// A call's arguments.
struct Arguments {
    fd: u64,
    uaddr: u64,
    addrlen: u64,
}

#[tracepoint]
pub fn connect_exit(ctx: TracePointContext) -> u32 {
    run(|| {
        let task = Typed::current_task();
        let info = task_info(task);
        if ignored(&info) {
            return Ok(());
        }
        let args = arguments_from_registers(task)?;
        emit(task, info, syscall_ret(&ctx), args, None)
    })
}

/// The syscall's arguments, from the user registers the kernel saved at entry (they are
/// not changed by the call; the return value goes to `ax`/`x0`, not to an argument register
/// on the architectures whose offsets userspace provides).
#[inline(always)]
fn arguments_from_registers(task: Typed) -> Result<Arguments, Failure> {
    let (a0, a1, a2) = (
        config(|c| &c.regs_arg0),
        config(|c| &c.regs_arg1),
        config(|c| &c.regs_arg2),
    );
    if a0 == ABSENT || a1 == ABSENT || a2 == ABSENT {
        // Not attached in this case (userspace refuses the hook); kept for the verifier.
        return Err(Failure(counters::READ_ERROR));
    }
    let regs = task.user_registers();
    Ok(Arguments {
        fd: regs.field(a0),
        uaddr: regs.field(a1),
        addrlen: regs.field(a2),
    })
}

#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    run(|| {
        let id = bpf_get_current_pid_tgid();
        if ignored_tgid((id >> 32) as u32) {
            return Ok(());
        }
        let pending = PendingConnect {
            started_ns: now_ns(),
            fd: syscall_arg::<0>(&ctx),
            uaddr: syscall_arg::<1>(&ctx),
            addrlen: syscall_arg::<2>(&ctx),
        };
        PENDING_CONNECTS
            .insert(&id, &pending, 0)
            .map_err(|_| Failure(counters::PENDING_FULL))
    })
}

#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    run(|| {
        let id = bpf_get_current_pid_tgid();
        // SAFETY: the value is copied out at once.
        let Some(pending) = (unsafe { PENDING_CONNECTS.get(&id) }).copied() else {
            return Ok(()); // an ignored process, or the enter was lost (counted there)
        };
        let _ = PENDING_CONNECTS.remove(&id);
        let arguments = Arguments {
            fd: pending.fd,
            uaddr: pending.uaddr,
            addrlen: pending.addrlen,
        };
        let task = Typed::current_task();
        let info = task_info(task);
        if ignored(&info) {
            return Ok(());
        }
        emit(
            task,
            info,
            syscall_ret(&ctx),
            arguments,
            Some(pending.started_ns),
        )
    })
}

/// Builds and sends the event of a call that returned `ret`, in place in the ring: no
/// copy of the record, and no record on the stack.
#[inline(always)]
fn emit(
    task: Typed,
    info: TaskInfo,
    ret: i64,
    args: Arguments,
    started_ns: Option<u64>,
) -> Result<(), Failure> {
    let now = now_ns();
    let Some(mut entry) = CONNECT_EVENTS.reserve::<ConnectEvent>(0) else {
        return Err(Failure(counters::lost(ring::CONNECT)));
    };
    // Submitted or discarded below on every path (no `?` past this point).
    let ev = zeroed(&mut entry);
    ev.task = info;
    ev.ts_ns = now;
    ev.ret = ret;
    ev.fd = args.fd as u32;
    ev.addrlen = args.addrlen as u32;
    if let Some(started) = started_ns {
        ev.syscall_ns = now.saturating_sub(started);
        ev.flags |= connect_flags::SYSCALL_TIME_KNOWN;
    }
    let connected = ret == 0 || ret == -EINPROGRESS;
    if let Some(sock) = socket_of_fd(task, args.fd) {
        ev.sock = sock.sk;
        ev.sock_type = sock.sock_type;
        ev.protocol = sock.protocol;
        if connected {
            read_socket_addresses(ev);
        }
        // A TCP socket's owner is recorded at SYN_SENT, inside this same call (tcp.rs).
        let ip = ev.family == family::INET || ev.family == family::INET6;
        if ip && sock.protocol != IPPROTO_TCP {
            owners::remember_changed(sock.sk, sock.socket, info);
        }
    }
    if ev.family == 0 {
        // Failed, not a socket, not IP, or a disconnect (AF_UNSPEC): what the caller asked.
        read_destination(ev, args.uaddr, args.addrlen);
    }
    if ev.family == family::UNIX {
        // The longer record, with the path; this one is not sent.
        let sent = emit_unix(ev, args.uaddr, args.addrlen);
        entry.discard(BPF_RB_NO_WAKEUP);
        return sent;
    }
    entry.submit(wakeup_flags(ring::CONNECT));
    Ok(())
}

/// Destination and source of a socket the call connected: one read of `sock_common` (two
/// for IPv6). Leaves the family 0 when the socket holds no peer (a UDP disconnect, or not
/// an IP socket).
#[inline(always)]
fn read_socket_addresses(ev: &mut ConnectEvent) {
    let Some(addrs) = addresses(ev.sock) else {
        return;
    };
    if addrs.dport == [0, 0] {
        return;
    }
    match addrs.family {
        family::INET => {
            ev.daddr[..4].copy_from_slice(&addrs.daddr);
            ev.saddr[..4].copy_from_slice(&addrs.rcv_saddr);
        }
        family::INET6 => {
            let Some(v6) = addresses_v6(ev.sock) else {
                return;
            };
            ev.daddr = v6.daddr;
            ev.saddr = v6.rcv_saddr;
        }
        _ => return,
    }
    ev.family = addrs.family;
    ev.dport = u16::from_be_bytes(addrs.dport);
    ev.sport = addrs.num;
}

/// A UNIX connect's record, with the path read straight into the ring (too big for the
/// stack beside the event).
#[inline(always)]
fn emit_unix(ev: &ConnectEvent, uaddr: u64, addrlen: u64) -> Result<(), Failure> {
    let flags = wakeup_flags(ring::CONNECT);
    let Some(mut entry) = CONNECT_EVENTS.reserve::<UnixConnectEvent>(0) else {
        return Err(Failure(counters::lost(ring::CONNECT)));
    };
    let record = entry.as_mut_ptr();
    // SAFETY: `record` points at a reserved, writable UnixConnectEvent; every field is
    // written before the record is submitted.
    unsafe {
        (*record).connect = *ev;
        (*record)._pad = [0; 4];
        (*record).path = [0; UNIX_PATH_LEN];
        // Read only what the caller passed: sun_path may end right at addrlen.
        let len = addrlen.saturating_sub(2).min(UNIX_PATH_LEN as u64) as u32;
        generated::bpf_probe_read_user(
            (*record).path.as_mut_ptr().cast(),
            len,
            (uaddr + 2) as *const _,
        );
    }
    entry.submit(flags);
    Ok(())
}

/// Copies family, address and port out of the user's sockaddr. A bad pointer leaves them
/// zero: the syscall itself then failed with EFAULT, which the event reports.
#[inline(always)]
fn read_destination(ev: &mut ConnectEvent, uaddr: u64, addrlen: u64) {
    // One user-memory read for the fixed part: sockaddr_in6 (28 bytes) is the largest IP
    // sockaddr; shorter ones are read as far as the caller passed.
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
        _ => {}
    }
}
