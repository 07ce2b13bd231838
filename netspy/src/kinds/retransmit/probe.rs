//! The retransmit probe: `tcp_retransmit_skb` and `tcp_retransmit_synack` as BTF-typed
//! tracepoints, or the classic `tcp:tcp_retransmit_skb` (no segment counts, no SYN-ACKs).

use netspy_common::{
    config::{ABSENT, Config},
    counters, ring,
};

use crate::{
    events::Kind,
    probes::{Attachment, Hook, ProbeSpec},
};

/// The probe.
pub const PROBE: ProbeSpec = ProbeSpec {
    name: "retransmit",
    description: "TCP segments sent again (timeouts, SYNs included, fast retransmits, tail loss probes; a listener's SYN-ACKs with the first hook) with their 4-tuple, state and owner",
    delivers: Some(Kind::Retransmit),
    ring: Some("RETRANSMIT_EVENTS"),
    lost: &[counters::lost(ring::index::RETRANSMIT)],
    hooks: &[
        Hook {
            attachments: &[
                Attachment::Btf {
                    program: "tcp_retransmit_skb_btf",
                    name: "tcp_retransmit_skb",
                },
                Attachment::Btf {
                    program: "tcp_retransmit_synack_btf",
                    name: "tcp_retransmit_synack",
                },
            ],
            unusable: sock_unknown,
        },
        Hook {
            attachments: &[Attachment::Classic {
                program: "tcp_retransmit_skb",
                category: "tcp",
                name: "tcp_retransmit_skb",
            }],
            unusable: |c| {
                sock_unknown(c).or((c.tp_retransmit_skaddr == ABSENT).then_some(
                    "the record of tcp/tcp_retransmit_skb is not as netspy reads it (see the log)",
                ))
            },
        },
    ],
};

/// Why no retransmission hook can work: the 4-tuple and state are read from the socket.
fn sock_unknown(c: &Config) -> Option<&'static str> {
    (c.sock_addrs == ABSENT)
        .then_some("this kernel's sock_common is not laid out as netspy reads it (see the log)")
}
