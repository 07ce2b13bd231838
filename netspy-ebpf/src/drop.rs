//! Packet drops from `kfree_skb` (with `reason`, Linux 5.17+): the BTF-typed tracepoint,
//! falling back to the classic tracepoint, then to the raw tracepoint of the same name. Frees that are not drops (`SKB_NOT_DROPPED_YET`,
//! `SKB_CONSUMED`) are skipped. The 5-tuple is parsed from the packet's network header; the
//! owner comes from the socket (`skb->sk`, else `rx_sk`), never from the current task, which
//! in softirq is whoever happened to run, unless the task is checked to be sending the
//! datagram (`sender.rs`).
//! Kernel: `TRACE_EVENT(kfree_skb, TP_PROTO(struct sk_buff *skb, void *location,
//! enum skb_drop_reason reason, struct sock *rx_sk))`
//! <https://elixir.bootlin.com/linux/v6.18/source/include/trace/events/skb.h#L24>.

use aya_ebpf::{
    macros::{btf_tracepoint, raw_tracepoint, tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};
use netspy_common::{
    config::ABSENT,
    counters,
    drop::DropEvent,
    family, flags,
    proto::{IPPROTO_TCP, IPPROTO_UDP},
    ring::index as ring,
};

use crate::{
    btf::Typed,
    kernel::{
        BPF_RB_NO_WAKEUP, Failure, config, ignored, now_ns, read_field, read_kernel, run,
        wakeup_flags, zeroed,
    },
    maps::DROP_EVENTS,
    owners, sampling, sender,
};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
/// IPv6 extension headers walked to reach the transport header (RFC 8200 section 4).
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_DEST: u8 = 60;
/// More extension headers than this leave the ports unknown; real traffic has one or two.
const IPV6_MAX_EXT_HEADERS: usize = 8;

/// The cheapest hook: a BTF-typed tracepoint, whose arguments are plain loads and whose
/// `skb` is a typed pointer (Linux 5.5+; `reason` 5.17+, `rx_sk` 6.10+, as the format file
/// says).
#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb_btf(ctx: BtfTracePointContext) -> i32 {
    let skb: u64 = ctx.arg(0);
    let location: u64 = ctx.arg(1);
    let reason: u64 = if config(|c| &c.tp_drop_reason) == ABSENT {
        0
    } else {
        ctx.arg(2)
    };
    let rx_sk: u64 = if config(|c| &c.tp_drop_rx_sk) == ABSENT {
        0
    } else {
        ctx.arg(3)
    };
    let skb_sk = || Ok(Typed::from_argument(skb).field(config(|c| &c.skb_sk)));
    run(|| handle_drop(skb, skb_sk, location, reason as u32, rx_sk)) as i32
}

#[tracepoint]
pub fn kfree_skb(ctx: TracePointContext) -> u32 {
    run(|| {
        let skb: u64 = read_field(&ctx, config(|c| &c.tp_drop_skbaddr))?;
        let location: u64 = read_field(&ctx, config(|c| &c.tp_drop_location))?;
        let reason_off = config(|c| &c.tp_drop_reason);
        let reason: u32 = if reason_off == ABSENT {
            0
        } else {
            read_field(&ctx, reason_off)?
        };
        let rx_sk_off = config(|c| &c.tp_drop_rx_sk);
        let rx_sk: u64 = if rx_sk_off == ABSENT {
            0
        } else {
            read_field(&ctx, rx_sk_off)?
        };
        let skb_sk = || read_kernel(skb + config(|c| &c.skb_sk) as u64);
        handle_drop(skb, skb_sk, location, reason, rx_sk)
    })
}

/// Fallback when the classic tracepoint is refused. Reads the first three arguments only:
/// `rx_sk` (the fourth) does not exist before 6.10, and reading past the last argument makes
/// the attach fail.
#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn kfree_skb_raw(ctx: RawTracePointContext) -> i32 {
    let skb: u64 = ctx.arg(0);
    let location: u64 = ctx.arg(1);
    let reason: u64 = ctx.arg(2);
    let skb_sk = || read_kernel(skb + config(|c| &c.skb_sk) as u64);
    run(|| handle_drop(skb, skb_sk, location, reason as u32, 0)) as i32
}

/// One freed packet: skipped when it was not dropped; counted by reason and owner when its
/// CPU has sent its share of full events in this window; else sent in full.
#[inline(always)]
fn handle_drop(
    skb: u64,
    skb_sk: impl FnOnce() -> Result<u64, Failure>,
    location: u64,
    reason: u32,
    rx_sk: u64,
) -> Result<(), Failure> {
    if reason_off_is_present() && is_not_a_drop(reason) {
        return Ok(());
    }
    let skb_sk = skb_sk()?;
    let sk = if skb_sk != 0 { skb_sk } else { rx_sk };
    let owner = if sk != 0 { owners::owner_of(sk) } else { None };
    if let Some(owner) = &owner
        && ignored(&owner.task)
    {
        return Ok(());
    }
    if !sampling::may_send_event() {
        sampling::count_sampled_out(reason, owner.as_ref().map(|o| &o.task));
        return Ok(());
    }
    let ethertype: u16 = read_kernel(skb + config(|c| &c.skb_protocol) as u64)?;
    // Built in place in the ring: no copy, and no 144-byte record on the 512-byte stack.
    let Some(mut entry) = DROP_EVENTS.reserve::<DropEvent>(0) else {
        return Err(Failure(counters::lost(ring::DROP)));
    };
    // Submitted or discarded below on every path.
    let ev = zeroed(&mut entry);
    ev.ts_ns = now_ns();
    ev.location = location;
    ev.sock = sk;
    ev.reason = reason;
    ev.ethertype = u16::from_be(ethertype);
    if let Some(owner) = owner {
        ev.owner = owner.task;
        ev.flags = flags::OWNER_KNOWN;
    }
    // A header we cannot read still leaves a drop worth reporting (reason, location, owner).
    let _ = parse_headers(skb, ev);
    // Only a datagram with no socket at all: a drop on a receiving socket whose owner is
    // not known is that socket's, never its sender's.
    if sk == 0
        && ev.flags & flags::OWNER_KNOWN == 0
        && ev.protocol == IPPROTO_UDP
        && ev.flags & flags::PORTS_KNOWN != 0
        && let Some(sender) = sender::current_sender(ev)
    {
        if ignored(&sender) {
            entry.discard(BPF_RB_NO_WAKEUP);
            return Ok(());
        }
        ev.owner = sender;
        ev.flags |= flags::OWNER_KNOWN;
    }
    entry.submit(wakeup_flags(ring::DROP));
    Ok(())
}

#[inline(always)]
fn reason_off_is_present() -> bool {
    config(|c| &c.tp_drop_reason) != ABSENT
}

#[inline(always)]
fn is_not_a_drop(reason: u32) -> bool {
    reason == config(|c| &c.reason_not_dropped) || reason == config(|c| &c.reason_consumed)
}

/// Fills family, protocol, addresses and ports from the IPv4/IPv6 header at
/// `skb->head + skb->network_header`.
#[inline(always)]
fn parse_headers(skb: u64, ev: &mut DropEvent) -> Result<(), Failure> {
    let head: u64 = read_kernel(skb + config(|c| &c.skb_head) as u64)?;
    let nh: u16 = read_kernel(skb + config(|c| &c.skb_network_header) as u64)?;
    if head == 0 || nh == 0xffff {
        return Ok(()); // network header not set yet
    }
    let l3 = head + nh as u64;
    let (proto, l4) = match ev.ethertype {
        ETH_P_IP => {
            let ip: [u8; 20] = read_kernel(l3)?;
            ev.family = family::INET;
            ev.saddr[..4].copy_from_slice(&ip[12..16]);
            ev.daddr[..4].copy_from_slice(&ip[16..20]);
            // A fragment other than the first carries no transport header.
            let fragment_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
            let l4 = l3 + ((ip[0] & 0x0f) as u64) * 4;
            (ip[9], if fragment_offset == 0 { Some(l4) } else { None })
        }
        ETH_P_IPV6 => {
            let ip: [u8; 40] = read_kernel(l3)?;
            ev.family = family::INET6;
            ev.saddr.copy_from_slice(&ip[8..24]);
            ev.daddr.copy_from_slice(&ip[24..40]);
            skip_ipv6_extensions(ip[6], l3 + 40)?
        }
        _ => return Ok(()),
    };
    ev.protocol = proto as u16;
    if let (IPPROTO_TCP | IPPROTO_UDP, Some(l4)) = (u16::from(proto), l4) {
        let ports: [u8; 4] = read_kernel(l4)?;
        ev.sport = u16::from_be_bytes([ports[0], ports[1]]);
        ev.dport = u16::from_be_bytes([ports[2], ports[3]]);
        ev.flags |= flags::PORTS_KNOWN;
    }
    Ok(())
}

/// Walks IPv6 extension headers from `next` at `at`: returns the transport protocol and where
/// its header starts, or None for the start when it is not in this packet (a fragment other
/// than the first, or more headers than the walk allows).
#[inline(always)]
fn skip_ipv6_extensions(mut next: u8, mut at: u64) -> Result<(u8, Option<u64>), Failure> {
    for _ in 0..IPV6_MAX_EXT_HEADERS {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                let header: [u8; 2] = read_kernel(at)?;
                next = header[0];
                at += (header[1] as u64 + 1) * 8;
            }
            NEXTHDR_AUTH => {
                let header: [u8; 2] = read_kernel(at)?;
                next = header[0];
                at += (header[1] as u64 + 2) * 4;
            }
            NEXTHDR_FRAGMENT => {
                let header: [u8; 4] = read_kernel(at)?;
                next = header[0];
                if u16::from_be_bytes([header[2], header[3]]) >> 3 != 0 {
                    return Ok((next, None));
                }
                at += 8;
            }
            _ => return Ok((next, Some(at))),
        }
    }
    Ok((next, None))
}
