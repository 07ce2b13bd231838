//! Host-name lookups (`getaddrinfo`).

use std::{net::IpAddr, sync::Arc};

use chrono::{DateTime, Utc};
use netspy_common::dns::{DnsEvent, dns_flags};
use serde::Serialize;

use crate::events::{FromWire, Happened, KernelNames, Process, c_string, ip_addr};

/// One `getaddrinfo` call for a host name, and what it answered.
#[derive(Clone, Debug, Serialize)]
pub struct DnsLookup {
    /// Wall-clock time the call returned.
    pub time: DateTime<Utc>,
    /// Kernel boot-time stamp (ns) of the return.
    pub timestamp_ns: u64,
    /// The calling process and thread.
    pub process: Process,
    /// The host name asked for (cut at 255 bytes, see `name_cut`).
    pub name: Arc<str>,
    /// The name was longer than the 255 bytes kept.
    pub name_cut: bool,
    /// The distinct addresses answered, in the C library's order (at most 8).
    pub answers: Vec<IpAddr>,
    /// Addresses answered beyond the 8 kept.
    pub more_answers: u32,
    /// What the call returned: 0, or an `EAI_*` code.
    pub return_code: i32,
    /// The code's name when the call failed (`EAI_NONAME`, `EAI_AGAIN`, ...).
    pub error: Option<&'static str>,
    /// Time inside the call, nanoseconds.
    pub latency_ns: u64,
}

impl Happened for DnsLookup {
    fn time(&self) -> DateTime<Utc> {
        self.time
    }
    fn process(&self) -> Option<&Process> {
        Some(&self.process)
    }
}

impl FromWire for DnsLookup {
    type Wire = DnsEvent;

    fn from_wire(wire: &DnsEvent, names: &KernelNames) -> Self {
        let count = usize::from(wire.answers).min(wire.addrs.len());
        let answers = wire.families[..count]
            .iter()
            .zip(&wire.addrs[..count])
            .filter_map(|(&family, addr)| ip_addr(family, addr))
            .collect();
        Self {
            time: names.clock.wall(wire.ts_ns),
            timestamp_ns: wire.ts_ns,
            process: Process::from_task(&wire.task),
            name: c_string(&wire.name).into(),
            name_cut: wire.flags & dns_flags::NAME_CUT != 0,
            answers,
            more_answers: u32::from(wire.more)
                + u32::from(wire.flags & dns_flags::ENTRIES_CUT != 0),
            return_code: wire.ret,
            error: eai_name(wire.ret),
            latency_ns: wire.latency_ns,
        }
    }
}

/// The name of a `getaddrinfo` error code (the same numbers in glibc and musl).
pub fn eai_name(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => return None,
        -1 => "EAI_BADFLAGS",
        -2 => "EAI_NONAME",
        -3 => "EAI_AGAIN",
        -4 => "EAI_FAIL",
        -5 => "EAI_NODATA",
        -6 => "EAI_FAMILY",
        -7 => "EAI_SOCKTYPE",
        -8 => "EAI_SERVICE",
        -9 => "EAI_ADDRFAMILY",
        -10 => "EAI_MEMORY",
        -11 => "EAI_SYSTEM",
        -12 => "EAI_OVERFLOW",
        _ => "EAI_UNKNOWN",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_named_as_the_c_library_names_them() {
        assert_eq!(eai_name(0), None);
        assert_eq!(eai_name(libc::EAI_NONAME), Some("EAI_NONAME"));
        assert_eq!(eai_name(libc::EAI_AGAIN), Some("EAI_AGAIN"));
        assert_eq!(eai_name(libc::EAI_SYSTEM), Some("EAI_SYSTEM"));
        assert_eq!(eai_name(libc::EAI_OVERFLOW), Some("EAI_OVERFLOW"));
        assert_eq!(eai_name(-99), Some("EAI_UNKNOWN"));
    }

    #[test]
    fn answers_are_decoded_by_family_and_counted_beyond_those_kept() {
        // SAFETY: the wire record is integers and arrays only; all zeroes is valid.
        let mut wire: DnsEvent = unsafe { std::mem::zeroed() };
        wire.name[..11].copy_from_slice(b"example.com");
        wire.answers = 2;
        wire.more = 1;
        wire.flags = dns_flags::ENTRIES_CUT;
        wire.families[0] = netspy_common::family::INET;
        wire.addrs[0][..4].copy_from_slice(&[93, 184, 216, 34]);
        wire.families[1] = netspy_common::family::INET6;
        wire.addrs[1] = std::net::Ipv6Addr::LOCALHOST.octets();
        let lookup = DnsLookup::from_wire(&wire, &KernelNames::default());
        assert_eq!(&*lookup.name, "example.com");
        assert_eq!(
            lookup.answers,
            [
                "93.184.216.34".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(lookup.more_answers, 2);
        assert_eq!(lookup.error, None);
    }
}
