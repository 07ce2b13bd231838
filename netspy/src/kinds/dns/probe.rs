//! The lookup probe: a uprobe and a uretprobe on `getaddrinfo` in every C library that
//! processes map. Its events travel in the connects' ring, so that a lookup is read before
//! the connects to its answers.

use std::path::Path;

use btf_rs::Btf;
use netspy_common::{config::Config, counters};

use crate::{
    events::Kind,
    probes::{Attachment, Hook, ProbeSpec, always},
};

/// The probe.
pub const PROBE: ProbeSpec = ProbeSpec {
    name: "dns",
    description: "host-name lookups (getaddrinfo in the C library): name, answers or error, latency; they name later connections to their answers",
    delivers: Some(Kind::Dns),
    // In the connects' ring: read in order, a lookup comes before the connects to its
    // answers.
    ring: None,
    // A lookup whose call was not remembered has no event either.
    lost: &[counters::LOST_DNS, counters::DNS_PENDING_FULL],
    hooks: &[Hook {
        attachments: &[
            Attachment::CLibrary {
                program: "getaddrinfo_in",
                symbol: "getaddrinfo",
                ret: false,
            },
            Attachment::CLibrary {
                program: "getaddrinfo_ret",
                symbol: "getaddrinfo",
                ret: true,
            },
        ],
        unusable: always,
    }],
};

/// The probe needs no fact of the running kernel: it reads `getaddrinfo`'s arguments and
/// answers in user memory, laid out by the C library's ABI (`netspy-ebpf`'s `dns.rs`).
pub fn learn(_config: &mut Config, _btf: &Btf, _tracefs: &Path) {}
