//! What the retransmit probe needs to know about the running kernel: the classic
//! tracepoint's record (`skaddr`, and `err` on Linux 6.10+) and where a TCP buffer keeps its
//! segment count. Missing, the hooks that read them are refused or the events carry no
//! segment count (`probe.rs` says which).

use std::path::Path;

use btf_rs::Btf;
use netspy_common::config::{ABSENT, Config};

use crate::probes::{Need, optional_offsets, tracepoint_fields};

/// Writes the retransmit facts of this kernel (its BTF and tracefs) into `config`.
pub fn learn(config: &mut Config, btf: &Btf, tracefs: &Path) {
    [config.tp_retransmit_skaddr, config.tp_retransmit_err] = tracepoint_fields(
        tracefs,
        ("tcp", "tcp_retransmit_skb"),
        [("skaddr", 8, Need::Required), ("err", 4, Need::Optional)],
    );
    config.skb_tcp_gso_segs = optional_offsets(
        btf,
        [("sk_buff", "cb"), ("tcp_skb_cb", "tcp_gso_segs")],
        "retransmissions carry no segment count",
    )
    .map_or(ABSENT, |[cb, segs]| cb + segs);
}
