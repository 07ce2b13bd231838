//! TCP connect outcomes from `sock/inet_sock_set_state`.
//!
//! `SYN_SENT` is entered inside `connect()` (process context): the owner and the time are
//! remembered per socket. Leaving `SYN_SENT` (ESTABLISHED, or CLOSE after a RST or a timeout)
//! usually happens in softirq, so the event is attributed to the remembered owner, never to
//! the current task. Kernel: `trace_inet_sock_set_state()` in `inet_sk_state_store`
//! <https://elixir.bootlin.com/linux/v6.18/source/include/trace/events/sock.h#L141>.
//! Minimum kernel: 4.16.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use netspy_common::{
    counters, family, flags,
    proto::IPPROTO_TCP,
    ring::index as ring,
    task::TaskInfo,
    tcp::{TcpOutcomeEvent, state},
};

use crate::{
    kernel::{
        Failure, config, current_task, ignored, now_ns, read_field, read_kernel, run, wakeup_flags,
    },
    maps::TCP_EVENTS,
    owners,
};

#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    run(|| try_inet_sock_set_state(&ctx))
}

fn try_inet_sock_set_state(ctx: &TracePointContext) -> Result<(), Failure> {
    let protocol: u16 = read_field(ctx, config(|c| &c.tp_state_protocol))?;
    if protocol != IPPROTO_TCP {
        return Ok(());
    }
    let sk: u64 = read_field(ctx, config(|c| &c.tp_state_skaddr))?;
    let oldstate: i32 = read_field(ctx, config(|c| &c.tp_state_oldstate))?;
    let newstate: i32 = read_field(ctx, config(|c| &c.tp_state_newstate))?;
    let (oldstate, newstate) = (oldstate as u32, newstate as u32);

    if newstate == state::SYN_SENT {
        // Inside connect(): the current task is the owner. Recorded even for ignored
        // processes so that their outcomes are recognised (and skipped) later.
        owners::remember(sk, 0, current_task(), now_ns());
        return Ok(());
    }
    let result = if oldstate == state::SYN_SENT {
        emit_outcome(ctx, sk, oldstate, newstate)
    } else {
        Ok(())
    };
    if newstate == state::CLOSE {
        owners::forget(sk);
    }
    result
}

fn emit_outcome(
    ctx: &TracePointContext,
    sk: u64,
    oldstate: u32,
    newstate: u32,
) -> Result<(), Failure> {
    let now = now_ns();
    let mut ev = TcpOutcomeEvent {
        owner: TaskInfo::EMPTY,
        ts_ns: now,
        latency_ns: 0,
        sock: sk,
        oldstate,
        newstate,
        error: 0,
        flags: 0,
        family: read_field(ctx, config(|c| &c.tp_state_family))?,
        sport: read_field(ctx, config(|c| &c.tp_state_sport))?,
        dport: read_field(ctx, config(|c| &c.tp_state_dport))?,
        _pad: 0,
        saddr: [0; 16],
        daddr: [0; 16],
    };
    if let Some(owner) = owners::owner_of(sk) {
        if ignored(&owner.task) {
            return Ok(());
        }
        ev.owner = owner.task;
        ev.flags = flags::OWNER_KNOWN;
        if owner.syn_sent_ns != 0 {
            ev.latency_ns = now.saturating_sub(owner.syn_sent_ns);
        }
    }
    // sk_err is set before tcp_done() moves the socket to CLOSE: it says refused or timed out.
    let err: i32 = read_kernel(sk + config(|c| &c.sock_err) as u64).unwrap_or(0);
    ev.error = err as u32;
    if ev.family == family::INET6 {
        ev.saddr = read_field(ctx, config(|c| &c.tp_state_saddr_v6))?;
        ev.daddr = read_field(ctx, config(|c| &c.tp_state_daddr_v6))?;
    } else {
        let saddr: [u8; 4] = read_field(ctx, config(|c| &c.tp_state_saddr))?;
        let daddr: [u8; 4] = read_field(ctx, config(|c| &c.tp_state_daddr))?;
        ev.saddr[..4].copy_from_slice(&saddr);
        ev.daddr[..4].copy_from_slice(&daddr);
    }
    TCP_EVENTS
        .output::<TcpOutcomeEvent>(&ev, wakeup_flags(ring::TCP))
        .map_err(|_| Failure(counters::lost(ring::TCP)))
}
