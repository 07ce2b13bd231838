//! Every probe described once: its name, what it watches, its hooks in fallback order (with
//! the kernel facts each needs), the events it delivers, its ring buffer and its loss
//! counters. The layers' probes are described here, a kind kept whole's in its `probe.rs`;
//! attaching (`attach.rs`), reading (`reader.rs`), `/health`, `/api/programs` and
//! `/metrics` all work from [`PROBES`], which lists them all.

use std::sync::LazyLock;

use netspy_common::{
    config::{ABSENT, Config},
    counters, ring,
};

pub use super::attach::{Attachment, Hook, always};
use crate::events::Kind;

/// One probe.
#[derive(Debug)]
pub struct ProbeSpec {
    /// Its name in `/health`, `/api/programs` and the metrics.
    pub name: &'static str,
    /// What it watches, for people (`/api/programs`).
    pub description: &'static str,
    /// The hooks to try, best first: the first that attaches wins.
    pub hooks: &'static [Hook],
    /// The kind of events it delivers; None for a probe that only feeds kernel maps.
    pub delivers: Option<Kind>,
    /// Its ring buffer map, when it has one of its own.
    pub ring: Option<&'static str>,
    /// The `COUNTERS` indexes of its events lost in the kernel (ring full, a call not
    /// remembered).
    pub lost: &'static [u32],
}

/// Every probe, in the order they attach and are listed: those of the kinds still in the
/// layers, those of the kinds kept whole (`crate::kinds::PROBES`), then the socket owners'.
pub static PROBES: LazyLock<Vec<&'static ProbeSpec>> = LazyLock::new(|| {
    LAYER_PROBES
        .iter()
        .chain(crate::kinds::PROBES)
        .chain([&SOCKET_OWNERS])
        .collect()
});

/// The probes of the kinds that still sit in the layers' files.
const LAYER_PROBES: &[ProbeSpec] = &[
    ProbeSpec {
        name: "connect",
        description: "connect(2) calls: destination, socket type and protocol, result",
        delivers: Some(Kind::Connection),
        ring: Some("CONNECT_EVENTS"),
        lost: &[counters::lost(ring::index::CONNECT)],
        hooks: &[
            // One program when the call returns, its arguments from the saved registers.
            Hook {
                attachments: &[Attachment::Classic {
                    program: "connect_exit",
                    category: "syscalls",
                    name: "sys_exit_connect",
                }],
                unusable: |c| {
                    (c.regs_arg0 == ABSENT)
                        .then_some("the saved syscall registers are not known on this kernel")
                },
            },
            Hook {
                attachments: &[
                    Attachment::Classic {
                        program: "sys_enter_connect",
                        category: "syscalls",
                        name: "sys_enter_connect",
                    },
                    Attachment::Classic {
                        program: "sys_exit_connect",
                        category: "syscalls",
                        name: "sys_exit_connect",
                    },
                ],
                unusable: always,
            },
        ],
    },
    ProbeSpec {
        name: "tcp_outcome",
        description: "TCP connect results (established, refused, timed out) and latency",
        delivers: Some(Kind::TcpOutcome),
        ring: Some("TCP_EVENTS"),
        lost: &[counters::lost(ring::index::TCP)],
        hooks: &[Hook {
            attachments: &[Attachment::Classic {
                program: "inet_sock_set_state",
                category: "sock",
                name: "inet_sock_set_state",
            }],
            unusable: |c| {
                if c.tp_state_skaddr == ABSENT {
                    Some(
                        "the record of sock/inet_sock_set_state is not as netspy reads it (see the log)",
                    )
                } else if c.sock_err == ABSENT {
                    Some("this kernel's BTF has no sock.sk_err, which tells refused from timed out")
                } else {
                    None
                }
            },
        }],
    },
    ProbeSpec {
        name: "packet_drop",
        description: "packet drops with the kernel's drop reason, 5-tuple and owner",
        delivers: Some(Kind::PacketDrop),
        ring: Some("DROP_EVENTS"),
        lost: &[counters::lost(ring::index::DROP)],
        hooks: &[
            // Typed arguments: no bpf_probe_read_kernel for the tracepoint's fields.
            Hook {
                attachments: &[Attachment::Btf {
                    program: "kfree_skb_btf",
                    name: "kfree_skb",
                }],
                unusable: skb_unknown,
            },
            Hook {
                attachments: &[Attachment::Classic {
                    program: "kfree_skb",
                    category: "skb",
                    name: "kfree_skb",
                }],
                unusable: |c| {
                    skb_unknown(c).or((c.tp_drop_skbaddr == ABSENT).then_some(
                        "the record of skb/kfree_skb is not as netspy reads it (see the log)",
                    ))
                },
            },
            Hook {
                attachments: &[Attachment::Raw {
                    program: "kfree_skb_raw",
                    name: "kfree_skb",
                }],
                unusable: skb_unknown,
            },
        ],
    },
];

/// Owners of sockets that never connect.
const SOCKET_OWNERS: ProbeSpec = ProbeSpec {
    name: "socket_owners",
    description: "owners of sockets at socket(), bind() and accept(), so drops on sockets that never connect are attributed (no events of its own)",
    delivers: None,
    ring: None,
    lost: &[],
    hooks: &[
        Hook {
            attachments: &[SOCKET, BIND, ACCEPT4, ACCEPT],
            unusable: always,
        },
        // Some architectures have only accept4 as a syscall.
        Hook {
            attachments: &[SOCKET, BIND, ACCEPT4],
            unusable: always,
        },
    ],
};

const SOCKET: Attachment = Attachment::Classic {
    program: "sys_exit_socket",
    category: "syscalls",
    name: "sys_exit_socket",
};
const BIND: Attachment = Attachment::Classic {
    program: "sys_enter_bind",
    category: "syscalls",
    name: "sys_enter_bind",
};
const ACCEPT4: Attachment = Attachment::Classic {
    program: "sys_exit_accept4",
    category: "syscalls",
    name: "sys_exit_accept4",
};
const ACCEPT: Attachment = Attachment::Classic {
    program: "sys_exit_accept",
    category: "syscalls",
    name: "sys_exit_accept",
};

/// Why no drop hook can work: the packet's headers are found through `struct sk_buff`.
fn skb_unknown(c: &Config) -> Option<&'static str> {
    (c.skb_head == ABSENT)
        .then_some("this kernel's BTF lacks sk_buff.head, network_header, sk or protocol")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_named_once_and_each_kind_is_delivered_by_one_probe() {
        for (i, probe) in PROBES.iter().enumerate() {
            assert!(!probe.hooks.is_empty(), "{} has no hook", probe.name);
            assert!(
                !probe.description.is_empty(),
                "{} is not described",
                probe.name
            );
            assert!(
                PROBES[..i].iter().all(|p| p.name != probe.name),
                "{} twice",
                probe.name
            );
            if let Some(ring) = probe.ring {
                assert!(probe.delivers.is_some(), "{ring} carries nothing");
                assert!(PROBES[..i].iter().all(|p| p.ring != Some(ring)));
            }
            // Every delivered event can be lost, and the loss is counted.
            assert_eq!(
                probe.delivers.is_some(),
                !probe.lost.is_empty(),
                "{}",
                probe.name
            );
            assert!(probe.lost.iter().all(|&c| c < counters::COUNT));
        }
        for kind in Kind::ALL {
            let by: Vec<_> = PROBES.iter().filter(|p| p.delivers == Some(kind)).collect();
            assert_eq!(by.len(), 1, "{kind:?}");
        }
    }

    #[test]
    fn a_missing_kernel_fact_refuses_only_the_hooks_that_read_it() {
        let refused = |config: &Config| -> Vec<&str> {
            PROBES
                .iter()
                .filter(|p| p.hooks.iter().all(|h| (h.unusable)(config).is_some()))
                .map(|p| p.name)
                .collect()
        };
        // Every offset known (0 is an offset, not ABSENT).
        // SAFETY: Config is repr(C) u32 fields only; all zeros is a valid value.
        let known: Config = unsafe { std::mem::zeroed() };
        assert!(refused(&known).is_empty());
        let no_state = Config {
            tp_state_skaddr: ABSENT,
            ..known
        };
        assert_eq!(refused(&no_state), ["tcp_outcome"]);
        let no_skb = Config {
            skb_head: ABSENT,
            ..known
        };
        assert_eq!(refused(&no_skb), ["packet_drop"]);
        // Without the classic record, the typed tracepoint still works.
        let no_record = Config {
            tp_drop_skbaddr: ABSENT,
            ..known
        };
        assert!(refused(&no_record).is_empty());
    }
}
