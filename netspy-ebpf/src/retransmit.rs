//! TCP retransmissions from `tcp:tcp_retransmit_skb`, fired by `__tcp_retransmit_skb` for
//! every segment sent again: timeouts (a SYN in `SYN_SENT` included), fast retransmits and
//! tail loss probes that resend (Linux has no tracepoint of its own for loss probes). It
//! runs in softirq or timer context, so the socket's owner comes from the socket-owner map,
//! never from the current task. The addresses are read from the socket (one read), the
//! same way for both hooks. A listener's SYN-ACK sent again (`tcp:tcp_retransmit_synack`,
//! its handshake unanswered) comes from the connection request, whose addresses are a
//! `sock_common` like a socket's, owned by the listening socket's owner. Kernel:
//! <https://elixir.bootlin.com/linux/v6.18/source/include/trace/events/tcp.h#L91>.

use aya_ebpf::{
    macros::{btf_tracepoint, map, tracepoint},
    maps::RingBuf,
    programs::{BtfTracePointContext, TracePointContext},
};
use netspy_common::{
    config::ABSENT, counters, family, flags, retransmit::RetransmitEvent, ring, task::TaskInfo,
};

use crate::{
    kernel::{Failure, config, ignored, now_ns, read_field, read_kernel, run, wakeup_flags},
    owners,
    socket::{addresses, addresses_v6},
};

/// The retransmissions' own ring (sizes: `ring::bytes`).
#[map]
static RETRANSMIT_EVENTS: RingBuf = RingBuf::with_byte_size(ring::bytes::RETRANSMIT, 0);

/// The cheapest hook: the socket is the first argument (Linux 5.5+).
#[btf_tracepoint(function = "tcp_retransmit_skb")]
pub fn tcp_retransmit_skb_btf(ctx: BtfTracePointContext) -> i32 {
    let (sk, skb): (u64, u64) = (ctx.arg(0), ctx.arg(1));
    // Linux 6.10+ also traces an attempt that sent nothing (the buffer still queued below,
    // no memory): its third argument says so. The test is a constant to the verifier, so
    // older kernels never see the read of an argument they lack.
    if config(|c| &c.tp_retransmit_err) != ABSENT {
        let err: i64 = ctx.arg(2);
        if err as i32 != 0 {
            return 0;
        }
    }
    run(|| resent(sk, sk, segments(skb))) as i32
}

/// How many segments the buffer `skb` holds (`tcp_skb_pcount`), 0 when unknown.
#[inline(always)]
fn segments(skb: u64) -> u16 {
    let offset = config(|c| &c.skb_tcp_gso_segs);
    if offset == ABSENT {
        return 0;
    }
    read_kernel::<u16>(skb + u64::from(offset)).unwrap_or(0)
}

/// A listener's SYN-ACK sent again: the listening socket, then the connection request
/// (Linux 5.5+, with the first hook).
#[btf_tracepoint(function = "tcp_retransmit_synack")]
pub fn tcp_retransmit_synack_btf(ctx: BtfTracePointContext) -> i32 {
    let (listener, request): (u64, u64) = (ctx.arg(0), ctx.arg(1));
    // A SYN-ACK is one segment.
    run(|| resent(listener, request, 1)) as i32
}

/// The classic tracepoint (Linux 4.15+): the socket's address from the record.
#[tracepoint]
pub fn tcp_retransmit_skb(ctx: TracePointContext) -> u32 {
    run(|| {
        let err_at = config(|c| &c.tp_retransmit_err);
        if err_at != ABSENT && read_field::<i32>(&ctx, err_at)? != 0 {
            return Ok(());
        }
        let sk = read_field(&ctx, config(|c| &c.tp_retransmit_skaddr))?;
        resent(sk, sk, 0)
    })
}

/// A segment sent again on `sk` (its 4-tuple and state), owned by the owner of `owner_sk`
/// (the socket itself, or for a SYN-ACK the listener).
#[inline(always)]
fn resent(owner_sk: u64, sk: u64, segments: u16) -> Result<(), Failure> {
    let mut ev = RetransmitEvent {
        owner: TaskInfo::EMPTY,
        ts_ns: now_ns(),
        sock: sk,
        flags: 0,
        state: 0,
        family: 0,
        sport: 0,
        dport: 0,
        segments,
        _pad: 0,
        saddr: [0; 16],
        daddr: [0; 16],
    };
    if let Some(owner) = owners::owner_of(owner_sk) {
        if ignored(&owner.task) {
            return Ok(());
        }
        ev.owner = owner.task;
        ev.flags = flags::OWNER_KNOWN;
    }
    let common = addresses(sk).ok_or(Failure(counters::READ_ERROR))?;
    ev.family = common.family;
    // skc_state is the low byte (little-endian; the bit fields after it are not ours).
    ev.state = common.state & 0xff;
    ev.sport = common.num;
    ev.dport = u16::from_be_bytes(common.dport);
    if ev.family == family::INET6 {
        let v6 = addresses_v6(sk).ok_or(Failure(counters::READ_ERROR))?;
        ev.saddr = v6.rcv_saddr;
        ev.daddr = v6.daddr;
    } else {
        ev.saddr[..4].copy_from_slice(&common.rcv_saddr);
        ev.daddr[..4].copy_from_slice(&common.daddr);
    }
    RETRANSMIT_EVENTS
        .output::<RetransmitEvent>(&ev, wakeup_flags(ring::index::RETRANSMIT))
        .map_err(|_| Failure(counters::lost(ring::index::RETRANSMIT)))
}
