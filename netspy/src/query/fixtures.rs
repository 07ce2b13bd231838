//! Events the query layer's unit tests store.

use chrono::DateTime;

use crate::{
    events::{ConnectionEvent, Destination, Event, Process},
    kinds::dns::DnsLookup,
    kinds::retransmit::TcpRetransmit,
};

/// A UDP connect at `t` (ns) from `pid` named `command` to 10.0.0.1:`port`.
pub fn udp_connect(t: i64, pid: u32, command: &str, port: u16) -> Event {
    Event::Connection(ConnectionEvent {
        time: DateTime::from_timestamp_nanos(t),
        timestamp_ns: 0,
        process: Process::named(pid, command),
        fd: 3,
        source: None,
        destination: Destination::Ip {
            ip: std::net::Ipv4Addr::new(10, 0, 0, 1).into(),
            port,
        },
        address_family: 2,
        protocol: "UDP".into(),
        socket_type: Some("SOCK_DGRAM".into()),
        raw_protocol: 17,
        raw_socktype: 2,
        return_code: 0,
        error: None,
        syscall_ns: None,
        sock: 0,
        destination_name: None,
    })
}

/// A UDP connect now from `process` to `to`.
pub fn connection_to(process: Process, to: std::net::SocketAddr) -> Event {
    let mut event = udp_connect(
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
        0,
        "x",
        0,
    );
    if let Event::Connection(c) = &mut event {
        c.process = process;
        c.destination = Destination::Ip {
            ip: to.ip(),
            port: to.port(),
        };
    }
    event
}

/// A retransmission now on `source` -> `destination` (`ip:port`), of a SYN or of data on an
/// established connection, owned by curl (pid 4312) when `owner` names it so, or unowned.
pub fn retransmit(owner: Option<&str>, source: &str, destination: &str, syn: bool) -> Event {
    let state: u8 = if syn { 2 } else { 1 };
    Event::Retransmit(TcpRetransmit {
        time: chrono::Utc::now(),
        timestamp_ns: 0,
        process: owner.map(|name| Process::named(4312, name)),
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
        state,
        state_name: crate::events::tcp_state_name(state),
        sock: 1,
        segments: 2,
    })
}

/// A lookup now by curl (pid 4312) of `name`, answered with `answers` (an error when none).
pub fn dns_lookup(name: &str, answers: &[&str]) -> Event {
    let answers: Vec<std::net::IpAddr> = answers.iter().filter_map(|a| a.parse().ok()).collect();
    let failed = answers.is_empty();
    Event::Dns(DnsLookup {
        time: chrono::Utc::now(),
        timestamp_ns: 0,
        process: Process::curl(),
        name: name.into(),
        name_cut: false,
        answers,
        more_answers: 0,
        return_code: if failed { -2 } else { 0 },
        error: failed.then_some("EAI_NONAME"),
        latency_ns: 1_500_000,
    })
}

/// Every probe attached, with no kernel behind it: a daemon that is ready, for tests of the
/// query layer and the REST API that need no real events.
#[derive(Default)]
pub struct AttachedProbes {
    /// What `stats` reports.
    pub stats: crate::probes::Stats,
    /// Probes whose every hook the stand-in kernel refused.
    pub refused: Vec<&'static str>,
}

impl super::ProbeSource for AttachedProbes {
    fn described(
        &self,
    ) -> Vec<(
        &'static crate::probes::ProbeSpec,
        crate::probes::ProbeStatus,
    )> {
        crate::probes::PROBES
            .iter()
            .map(|&spec| {
                let hook = format!("stand-in:{}", spec.name);
                let status = match self.refused.contains(&spec.name) {
                    false => crate::probes::ProbeStatus {
                        name: spec.name.to_owned(),
                        hook: Some(hook),
                        refused: Vec::new(),
                    },
                    true => crate::probes::ProbeStatus {
                        name: spec.name.to_owned(),
                        hook: None,
                        refused: vec![crate::probes::Refusal {
                            hook,
                            reason: "refused by the stand-in kernel".to_owned(),
                        }],
                    },
                };
                (spec, status)
            })
            .collect()
    }

    fn stats(&self) -> crate::probes::Stats {
        self.stats.clone()
    }

    fn sampled_drops(&self) -> crate::events::SampledDrops {
        crate::events::SampledDrops::default()
    }
}

/// A query handle over an empty store whose probes are attached ([`AttachedProbes`]).
pub fn ready_query() -> super::Query {
    query_over(AttachedProbes::default())
}

/// A query handle over an empty store, its probes `probes`.
pub fn query_over(probes: AttachedProbes) -> super::Query {
    let status = std::sync::Arc::new(super::Status::default());
    status.set(super::ProbeState::Running(std::sync::Arc::new(probes)));
    super::Query::new(
        crate::store::Store::new(crate::store::Limits::default()),
        status,
        super::DEFAULT_LIMIT,
    )
}
