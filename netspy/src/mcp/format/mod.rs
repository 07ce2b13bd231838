//! The tools' text answers, in the original netspy's sentences and line formats (the CLI
//! prints exactly these): each of the layers' kinds' answers in a file of their own (a kind
//! kept whole has them in its `text.rs`), the phrases they all share (who, windows, counts,
//! what the answer could not see) here.

mod analysis;
mod connections;
mod drops;

use chrono::{DateTime, Local, Utc};

use crate::{
    query::{CgroupView, Count, Coverage, Health, OutcomeCounts},
    text::escape,
};

pub use self::{
    analysis::analysis,
    connections::{connection_list, network_summary},
    drops::{drop_list, drop_summary},
};

/// Who a filter names: "process 'curl'", "PID 1234", "process 'curl' (PID 1234)".
pub(crate) fn subject(pid: Option<u32>, name: Option<&str>) -> Option<String> {
    let name = name.map(escape);
    match (pid, name) {
        (None, None) => None,
        (Some(pid), None) => Some(format!("PID {pid}")),
        (None, Some(name)) => Some(format!("process '{name}'")),
        (Some(pid), Some(name)) => Some(format!("process '{name}' (PID {pid})")),
    }
}

pub(crate) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub(crate) fn clock(time: DateTime<Utc>) -> String {
    time.with_timezone(&Local).format("%H:%M:%S").to_string()
}

/// `10.0.0.1:443`, `[2001:db8::1]:443`, or the address alone when there is no port.
pub(crate) fn endpoint(ip: &str, port: Option<u16>) -> String {
    match port {
        Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
        Some(port) => format!("{ip}:{port}"),
        None => ip.to_owned(),
    }
}

/// A list's line, and how many of the list's events it stands for.
pub(crate) struct Repeated {
    first: DateTime<Utc>,
    what: String,
    /// How many events the line stands for.
    pub times: u64,
    /// The events' weights added up (a retransmission's segments).
    pub weight: u64,
    last: DateTime<Utc>,
}

/// Each distinct line of `events` (time, line, weight) once, at its first time, with how
/// many times it came (other lines' events in between or not), their weight and its last
/// time: a burst reads as one line.
pub(crate) fn collapse(
    events: impl IntoIterator<Item = (DateTime<Utc>, String, u64)>,
) -> Vec<Repeated> {
    let mut lines: Vec<Repeated> = Vec::new();
    let mut index = std::collections::HashMap::<String, usize>::new();
    for (time, what, weight) in events {
        match index.get(&what).and_then(|&i| lines.get_mut(i)) {
            Some(line) => {
                line.times += 1;
                line.weight += weight;
                line.last = time;
            }
            None => {
                index.insert(what.clone(), lines.len());
                lines.push(Repeated {
                    first: time,
                    what,
                    times: 1,
                    weight,
                    last: time,
                });
            }
        }
    }
    lines
}

/// `  21:05:53 | <line><extra>`, then ` | 3 times, last 21:05:54` when it came again.
pub(crate) fn push_repeated(text: &mut String, line: &Repeated, extra: &str) {
    use std::fmt::Write as _;
    let _ = write!(text, "  {} | {}{extra}", clock(line.first), line.what);
    if line.times > 1 {
        let _ = write!(text, " | {} times, last {}", line.times, clock(line.last));
    }
    text.push('\n');
}

fn counts(items: &[Count], unit: Option<&str>) -> String {
    items
        .iter()
        .map(|c| match unit {
            Some(unit) => format!("{} ({} {unit})", escape(&c.name), c.count),
            None => format!("{} ({})", escape(&c.name), c.count),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `  ... and 3 more lookups` when a list shows fewer than matched.
pub(crate) fn push_more(text: &mut String, more: u64, one: &str, many: &str) {
    use std::fmt::Write as _;
    if more > 0 {
        let _ = writeln!(text, "  ... and {}", plural(more, one, many));
    }
}

/// A list's text without its last newline, with what its window could not see.
pub(crate) fn ended(text: &str, coverage: Option<&Coverage>, events: &str) -> String {
    let mut text = text.trim_end().to_owned();
    push_note(&mut text, coverage, events);
    text
}

/// `1 connection attempt`, `2 connection attempts`.
pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `ECONNREFUSED 3, EHOSTUNREACH 2`.
fn tally(items: &[Count]) -> String {
    items
        .iter()
        .map(|c| format!("{} {}", escape(&c.name), c.count))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The TCP results that happened: `2 established, 3 refused` ("" when none).
fn results(o: &OutcomeCounts) -> String {
    [
        (o.established, "established"),
        (o.refused, "refused"),
        (o.timed_out, "timed out"),
        (o.failed, "failed"),
        (o.aborted, "aborted"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// A duration given in milliseconds, at a precision that fits it: `0.08 ms`, `12.3 ms`, `1.20 s`.
fn millis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// The window of an answer with a preposition and a leading space: ` in the last 60
/// seconds`, or ` between 10:00:00 and 10:05:00` for a window that ended before the answer
/// (both times from the server, whose clock may differ from this one); "" when the server
/// did not say (the original ebpf-server's lists).
pub(crate) fn window(
    preposition: &str,
    seconds: u64,
    coverage: Option<&Coverage>,
    answered: DateTime<Utc>,
) -> String {
    match coverage {
        Some(c) if (answered - c.until).num_seconds() > 1 => {
            let day = |t: DateTime<Utc>| t.with_timezone(&Local).date_naive();
            if day(c.since) == day(c.until) && day(c.until) == day(answered) {
                format!(" between {} and {}", clock(c.since), clock(c.until))
            } else {
                let long = |t: DateTime<Utc>| t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
                format!(" between {} and {}", long(c.since), long(c.until))
            }
        }
        None if seconds == 0 => String::new(),
        _ => format!(" {preposition} the last {seconds} seconds"),
    }
}

/// `  Not the whole window: netspy began collecting at 10:20:07; ...`, naming what the
/// answer could not see, when anything.
fn coverage_note(c: Option<&Coverage>, events: &str) -> Option<String> {
    let c = c.filter(|c| !c.complete)?;
    let mut gaps = Vec::new();
    if let Some(t) = c.collecting_since {
        gaps.push(format!("netspy began collecting at {}", clock(t)));
    }
    if let Some(t) = c.history_since {
        gaps.push(format!(
            "history since {} only (older {events} evicted: {} since netspy started, of all processes)",
            clock(t),
            c.evicted
        ));
    }
    let mut lost = Vec::new();
    if c.lost_in_kernel > 0 {
        lost.push(plural(
            c.lost_in_kernel,
            events.trim_end_matches('s'),
            events,
        ));
    }
    if c.results_lost_in_kernel > 0 {
        lost.push(plural(
            c.results_lost_in_kernel,
            "TCP result",
            "TCP results",
        ));
    }
    if !lost.is_empty() {
        gaps.push(format!(
            "{} lost in the kernel (any process)",
            lost.join(" and ")
        ));
    }
    Some(format!("  Not the whole window: {}", gaps.join("; ")))
}

/// Appends the coverage note, when there is one, as a line of its own.
pub(crate) fn push_note(text: &mut String, c: Option<&Coverage>, events: &str) {
    if let Some(note) = coverage_note(c, events) {
        text.push('\n');
        text.push_str(&note);
    }
}

/// An event's process, and where it ran when netspy knows: `nginx (4312) in nginx.service`,
/// `app (311) in container 4f2c1e8b9a7d` (a container's short id rather than its scope).
pub(crate) fn who(process: &str, thread: &str, pid: u32, placement: &CgroupView) -> String {
    let owner = crate::text::owner(process, thread, pid, false);
    match (&placement.container, &placement.unit) {
        (Some(id), _) => format!("{owner} in container {}", escape(short_id(id))),
        (None, Some(unit)) => format!("{owner} in {}", escape(unit)),
        (None, None) => owner,
    }
}

/// The 12 digits of a container id that `docker ps` shows.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// One line on the daemon's state, for people: the probes by count, the missing ones by
/// name (`/health` has every hook).
pub fn health(h: &Health) -> String {
    let missing: Vec<&str> = h
        .probes
        .iter()
        .filter(|p| p.hook.is_none())
        .map(|p| p.name.as_str())
        .collect();
    let probes = match (h.probes.len(), missing.is_empty()) {
        (0, _) => "no probes yet".to_owned(),
        (n, true) => format!("{n} of {n} probes attached"),
        (n, false) => format!(
            "{} of {n} probes attached (not {})",
            n - missing.len(),
            missing.join(", ")
        ),
    };
    format!(
        "netspy {} is {} (up {}); {probes}; events received {}, lost {}",
        h.version,
        h.status,
        h.uptime,
        h.events.received.total(),
        h.events.lost_in_kernel.total()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{ConnectionList, ConnectionSummary, DropSummary};

    fn summary(count: u64) -> ConnectionSummary {
        ConnectionSummary {
            count,
            pid: 0,
            command: "curl".into(),
            duration_seconds: 60,
            query_time: Utc::now(),
            outcomes: OutcomeCounts {
                established: count,
                ..Default::default()
            },
            failed_calls: 0,
            call_errors: Vec::new(),
            coverage: None,
        }
    }

    #[test]
    fn attacker_chosen_names_cannot_command_the_terminal_or_fake_columns() {
        let event = serde_json::json!({
            "id": "1", "type": "connection", "pid": 7, "command": "esc\x1b[31mRED",
            "time": "2026-01-01T00:00:00Z", "timestamp": 0, "destination": "/tmp/a | b\nfake line",
            "destination_ip": "", "destination_port": 0, "address_family": 1, "protocol": "UNIX",
            "socket_type": "SOCK_STREAM", "return_code": 0, "error": null, "raw_ipv4": 0,
            "raw_ipv6": vec![0; 16], "raw_protocol": 0, "raw_socktype": 1, "uid": 0, "cgroup_id": 0,
            "outcome": null, "outcome_error": null, "latency_ms": null, "source": null,
        });
        let list: ConnectionList = serde_json::from_value(serde_json::json!({
            "total_events": 1, "total_pids": 1, "events_by_pid": {"7": [event]},
            "query_time": "2026-01-01T00:00:00Z", "matched_events": 1, "limit": 100,
            "limit_capped": false,
        }))
        .unwrap();
        let text = connection_list(&list);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("esc\\x1b[31mRED"), "{text}");
        assert!(text.contains("/tmp/a \\| b\\nfake line"), "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(
            network_summary(&summary(0), None, None, Some("x\ny")),
            "No network connections found for process 'x\\ny' in the last 60 seconds"
        );
    }

    #[test]
    fn summary_sentences_match_the_original() {
        assert_eq!(
            network_summary(&summary(5), None, None, Some("curl")),
            "Process 'curl' made 5 outbound connection attempts over the last 60 seconds (TCP: 5 established)"
        );
        assert_eq!(
            network_summary(&summary(0), None, None, Some("x")),
            "No network connections found for process 'x' in the last 60 seconds"
        );
        assert!(
            network_summary(&summary(2), None, Some(1234), None)
                .starts_with("PID 1234 made 2 outbound connection attempts")
        );
    }

    #[test]
    fn summaries_say_what_failed_and_what_was_dropped() {
        let mut s = summary(13);
        s.outcomes = OutcomeCounts {
            established: 3,
            refused: 8,
            aborted: 1,
            ..Default::default()
        };
        s.failed_calls = 2;
        s.call_errors = vec![Count {
            name: "ENETUNREACH".into(),
            count: 2,
        }];
        let drops: DropSummary = serde_json::from_value(serde_json::json!({
            "count": 3, "pid": 0, "command": "curl", "duration_seconds": 60,
            "query_time": "2026-01-01T00:00:00Z", "message": null,
            "by_reason": [{"reason": "NO_SOCKET", "category": "no_socket", "count": 3}],
            "routine_excluded": 0, "unattributed": 0, "sampled_out": 0,
        }))
        .unwrap();
        assert_eq!(
            network_summary(&s, Some(&drops), None, Some("curl")),
            "Process 'curl' made 13 outbound connection attempts over the last 60 seconds \
             (TCP: 3 established, 8 refused, 1 aborted; 2 failed calls: ENETUNREACH 2)\n  \
             Packet drops in the same window: 3 (NO_SOCKET 3)"
        );
        // A UDP sender that never connected: no attempts, but its datagrams were dropped.
        let mut udp = summary(1);
        udp.outcomes = OutcomeCounts::default();
        assert_eq!(
            network_summary(&udp, Some(&drops), Some(7), None),
            "PID 7 made 1 outbound connection attempt over the last 60 seconds\n  \
             Packet drops in the same window: 3 (NO_SOCKET 3)"
        );
    }

    #[test]
    fn a_window_netspy_did_not_see_whole_says_so() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let mut s = summary(0);
        s.coverage = Some(Coverage {
            since: Utc::now() - chrono::Duration::seconds(60),
            until: Utc::now(),
            complete: false,
            collecting_since: Some(at("2026-01-01T10:00:05Z")),
            history_since: Some(at("2026-01-01T10:00:30Z")),
            evicted: 7_400_000,
            lost_in_kernel: 1,
            results_lost_in_kernel: 3,
        });
        let text = network_summary(&s, None, None, Some("curl"));
        let (first, note) = text.split_once('\n').unwrap();
        assert_eq!(
            first,
            "No network connections found for process 'curl' in the last 60 seconds"
        );
        assert_eq!(
            note,
            format!(
                "  Not the whole window: netspy began collecting at {}; history since {} only \
                 (older connect events evicted: 7400000 since netspy started, of all \
                 processes); 1 connect event and 3 TCP results lost in the kernel (any process)",
                clock(at("2026-01-01T10:00:05Z")),
                clock(at("2026-01-01T10:00:30Z"))
            )
        );
        // A window that ended before the answer is named by its times.
        let since = at("2026-01-01T10:00:00Z");
        let until = at("2026-01-01T10:05:00Z");
        s.coverage = Some(Coverage {
            since,
            until,
            complete: true,
            collecting_since: None,
            history_since: None,
            evicted: 0,
            lost_in_kernel: 0,
            results_lost_in_kernel: 0,
        });
        // The answer's own time decides (the server's clock), and another day shows dates.
        s.query_time = at("2026-01-01T10:05:02Z");
        assert_eq!(
            network_summary(&s, None, None, Some("curl")),
            format!(
                "No network connections found for process 'curl' between {} and {}",
                clock(since),
                clock(until)
            )
        );
        s.query_time = at("2026-01-01T10:05:01Z");
        assert!(
            network_summary(&s, None, None, Some("curl")).ends_with("in the last 60 seconds"),
            "a second late is the answer's own delay"
        );
        s.query_time = at("2026-01-03T10:00:00Z");
        let long = |t: DateTime<Utc>| t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
        assert_eq!(
            network_summary(&s, None, None, Some("curl")),
            format!(
                "No network connections found for process 'curl' between {} and {}",
                long(since),
                long(until)
            )
        );
    }
}
