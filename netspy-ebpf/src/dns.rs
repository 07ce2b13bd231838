//! Host-name lookups, seen in the C library where they happen: a uprobe on `getaddrinfo`
//! keeps the name and result pointers per thread, and a uretprobe on its return builds the
//! event: the name, the call's result (0 or an `EAI_*` code), its latency and the distinct
//! addresses of the answer list. Userspace attaches both to every C library that processes
//! map (glibc and musl share `struct addrinfo`'s layout). The events go into the connects'
//! ring: one ring is read in the order its records were reserved, so userspace sees a
//! lookup before the connects to its answers and can name them as they arrive.
//!
//! `int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
//! struct addrinfo **res)`.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, bpf_probe_read_user_str_bytes},
    macros::{map, uprobe, uretprobe},
    maps::LruHashMap,
    programs::{ProbeContext, RetProbeContext},
};
use netspy_common::{
    counters,
    dns::{DnsEvent, MAX_ANSWERS, MAX_ENTRIES, NAME_LEN, dns_flags},
    family,
    ring::index as ring,
};

use crate::{
    kernel::{BPF_RB_NO_WAKEUP, Failure, current_task, ignored, now_ns, run, wakeup_flags, zeroed},
    maps::CONNECT_EVENTS,
};

/// Name lookups under way, by thread (pid_tgid). LRU: a thread that never returns (it
/// exited, or longjmp'd out) must not hold its entry for ever.
#[map]
static DNS_PENDING: LruHashMap<u64, PendingLookup> = LruHashMap::with_max_entries(8192, 0);

/// A call's start and the user pointers it was given.
#[repr(C)]
#[derive(Clone, Copy)]
struct PendingLookup {
    started_ns: u64,
    node: u64,
    res: u64,
}

/// The C library's `struct addrinfo` on 64-bit Linux (glibc and musl alike).
#[repr(C)]
#[derive(Clone, Copy)]
struct AddrInfo {
    flags: i32,
    family: i32,
    socktype: i32,
    protocol: i32,
    addrlen: u32,
    addr: u64,
    canonname: u64,
    next: u64,
}

const _: () = assert!(size_of::<AddrInfo>() == 48);

/// Program names stay within the kernel's 15 characters, so that bpftool and the benchmark
/// see them whole.
#[uprobe]
pub fn getaddrinfo_in(ctx: ProbeContext) -> u32 {
    run(|| {
        let node: u64 = ctx.arg(0).unwrap_or(0);
        let res: u64 = ctx.arg(3).unwrap_or(0);
        let id = bpf_get_current_pid_tgid();
        if node == 0 {
            // A service lookup only: no host name. An entry this thread left (a call it
            // never returned from) must not be taken for this call's at its return.
            let _ = DNS_PENDING.remove(&id);
            return Ok(());
        }
        let pending = PendingLookup {
            started_ns: now_ns(),
            node,
            res,
        };
        // LRU: when more lookups are under way than it holds, the oldest is pushed out
        // uncounted (its return then finds nothing); an insert that fails is counted.
        DNS_PENDING
            .insert(&id, &pending, 0)
            .map_err(|_| Failure(counters::DNS_PENDING_FULL))
    })
}

#[uretprobe]
pub fn getaddrinfo_ret(ctx: RetProbeContext) -> u32 {
    run(|| {
        let id = bpf_get_current_pid_tgid();
        // SAFETY: the value is copied out at once.
        let Some(pending) = (unsafe { DNS_PENDING.get(&id) }).copied() else {
            return Ok(()); // no host name asked, or the entry was not remembered
        };
        let _ = DNS_PENDING.remove(&id);
        let info = current_task();
        if ignored(&info) {
            return Ok(());
        }
        let ret: i64 = ctx.ret();
        let now = now_ns();
        // The connects' ring: a lookup is read before the connects that use its answers.
        let Some(mut entry) = CONNECT_EVENTS.reserve::<DnsEvent>(0) else {
            return Err(Failure(counters::LOST_DNS));
        };
        // Submitted or discarded below on every path (no `?` past this point).
        let ev = zeroed(&mut entry);
        ev.task = info;
        ev.ts_ns = now;
        ev.latency_ns = now.saturating_sub(pending.started_ns);
        ev.ret = ret as i32;
        // SAFETY: a user pointer, read through the helper (a fault reads nothing).
        match unsafe { bpf_probe_read_user_str_bytes(pending.node as *const u8, &mut ev.name) } {
            // 255 bytes or more: no DNS name is that long (253 at most).
            Ok(name) if name.len() >= NAME_LEN - 1 => ev.flags |= dns_flags::NAME_CUT,
            Ok(_) => {}
            Err(_) => {
                entry.discard(BPF_RB_NO_WAKEUP);
                return Err(Failure(counters::READ_ERROR));
            }
        }
        if written_address(&ev.name) {
            // `getaddrinfo("10.0.0.1")`, which bash's /dev/tcp and many clients make before
            // every connect: no name is looked up, and the connect ring is not for it.
            entry.discard(BPF_RB_NO_WAKEUP);
            return Ok(());
        }
        if ev.ret == 0 && pending.res != 0 {
            read_answers(ev, pending.res);
        }
        entry.submit(wakeup_flags(ring::CONNECT));
        Ok(())
    })
}

/// Bytes of an address written out that are looked at (an IPv6 address with a zone fits).
const ADDRESS_TEXT: usize = 64;

/// True for an address written out: digits and dots (IPv4, as `inet_aton` reads it), or hex
/// digits, dots and at least one colon (IPv6), up to an optional `%zone`. A host name is
/// neither: it has a letter beyond `a`-`f`, or it has hex letters and no colon.
#[inline(always)]
fn written_address(name: &[u8; NAME_LEN]) -> bool {
    let (mut colon, mut hex) = (false, false);
    for i in 0..ADDRESS_TEXT {
        match name.get(i).copied().unwrap_or(0) {
            0 | b'%' => return i > 0 && (colon || !hex),
            b'0'..=b'9' | b'.' => {}
            b':' => colon = true,
            b'a'..=b'f' | b'A'..=b'F' => hex = true,
            _ => return false,
        }
    }
    false
}

/// Walks the answer list `*res` and keeps its distinct addresses (entries of one address
/// and several socket types come one after another).
#[inline(always)]
fn read_answers(ev: &mut DnsEvent, res: u64) {
    // SAFETY: a user pointer, read through the helper.
    let Ok(mut next) = (unsafe { bpf_probe_read_user(res as *const u64) }) else {
        return;
    };
    let mut last = (0u16, [0u8; 16]);
    for _ in 0..MAX_ENTRIES {
        if next == 0 {
            return;
        }
        // SAFETY: as above.
        let Ok(ai) = (unsafe { bpf_probe_read_user(next as *const AddrInfo) }) else {
            return;
        };
        next = ai.next;
        let Some(answer) = address(&ai) else {
            continue;
        };
        if answer == last {
            continue;
        }
        last = answer;
        let n = ev.answers as usize;
        match (ev.families.get_mut(n), ev.addrs.get_mut(n)) {
            (Some(f), Some(a)) if n < MAX_ANSWERS => {
                *f = answer.0;
                *a = answer.1;
                ev.answers += 1;
            }
            _ => ev.more = ev.more.saturating_add(1),
        }
    }
    if next != 0 {
        ev.flags |= dns_flags::ENTRIES_CUT;
    }
}

/// The family and address of one entry (IPv4 in the first 4 bytes).
#[inline(always)]
fn address(ai: &AddrInfo) -> Option<(u16, [u8; 16])> {
    let mut addr = [0u8; 16];
    match ai.family as u16 {
        family::INET => {
            // sockaddr_in: family (2), port (2), address (4).
            // SAFETY: a user pointer, read through the helper.
            let v4: [u8; 4] =
                unsafe { bpf_probe_read_user((ai.addr + 4) as *const [u8; 4]) }.ok()?;
            addr[..4].copy_from_slice(&v4);
            Some((family::INET, addr))
        }
        family::INET6 => {
            // sockaddr_in6: family (2), port (2), flowinfo (4), address (16).
            // SAFETY: as above.
            addr = unsafe { bpf_probe_read_user((ai.addr + 8) as *const [u8; 16]) }.ok()?;
            Some((family::INET6, addr))
        }
        _ => None,
    }
}
