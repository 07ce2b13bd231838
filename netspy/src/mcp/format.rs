//! The tools' text answers, in the original netspy's sentences and line formats (the CLI
//! prints exactly these).

use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};

use crate::{
    query::{Analysis, ConnectionList, ConnectionSummary, Count, DropList, DropSummary, Health},
    text::escape,
};

/// Who a filter names: "process 'curl'", "PID 1234", "process 'curl' (PID 1234)".
fn subject(pid: Option<u32>, name: Option<&str>) -> Option<String> {
    let name = name.map(escape);
    match (pid, name) {
        (None, None) => None,
        (Some(pid), None) => Some(format!("PID {pid}")),
        (None, Some(name)) => Some(format!("process '{name}'")),
        (Some(pid), Some(name)) => Some(format!("process '{name}' (PID {pid})")),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn clock(time: DateTime<Utc>) -> String {
    time.with_timezone(&Local).format("%H:%M:%S").to_string()
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

/// `Process 'curl' made 5 outbound connection attempts over the last 60 seconds`.
pub fn network_summary(s: &ConnectionSummary, pid: Option<u32>, name: Option<&str>) -> String {
    let who = subject(pid, name);
    if s.count == 0 {
        return match who {
            Some(who) => format!(
                "No network connections found for {who} in the last {} seconds",
                s.duration_seconds
            ),
            None => format!(
                "No network connections found in the last {} seconds",
                s.duration_seconds
            ),
        };
    }
    let who = who.map_or_else(|| "All processes".to_owned(), |w| capitalized(&w));
    let mut text = format!(
        "{who} made {} outbound connection attempts over the last {} seconds",
        s.count, s.duration_seconds
    );
    let o = &s.outcomes;
    let results: Vec<String> = [
        (o.established, "established"),
        (o.refused, "refused"),
        (o.timed_out, "timed out"),
        (o.failed, "failed"),
        (o.aborted, "aborted"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if !results.is_empty() {
        let _ = write!(text, " (TCP: {})", results.join(", "));
    }
    text
}

/// `Recent connection events (15 total):` then `  21:05:53 | 127.0.0.1:8080 | TCP | netspy`
/// lines, then `  ... and 10 more events`.
pub fn connection_list(list: &ConnectionList) -> String {
    if list.matched_events == 0 {
        return "No connection events found".to_owned();
    }
    let mut events: Vec<_> = list.events_by_pid.values().flatten().collect();
    events.sort_by_key(|e| e.timestamp);
    let mut text = format!(
        "Recent connection events ({} total):\n",
        list.matched_events
    );
    for e in &events {
        let _ = write!(
            text,
            "  {} | {} | {} | {}",
            clock(e.time),
            escape(&e.destination),
            e.protocol,
            escape(&e.command)
        );
        match (&e.error, &e.outcome) {
            (Some(error), _) if error != "EINPROGRESS" => {
                let _ = write!(text, " | {error}");
            }
            (_, Some(outcome)) if outcome != "established" => {
                let _ = write!(text, " | {}", outcome.replace('_', " "));
            }
            _ => {}
        }
        text.push('\n');
    }
    let more = list.matched_events.saturating_sub(events.len() as u64);
    if more > 0 {
        let _ = writeln!(text, "  ... and {more} more events");
    }
    text.trim_end().to_owned()
}

/// `Connection Analysis:` with top destinations, protocols, ports, results and errors.
pub fn analysis(a: &Analysis) -> String {
    let mut text = String::from("Connection Analysis:\n");
    let _ = writeln!(
        text,
        "  Total: {} connection attempts in the last {} seconds ({:.1}/minute)",
        a.total_connections, a.duration_seconds, a.rate_per_minute
    );
    if a.total_connections == 0 {
        return text.trim_end().to_owned();
    }
    text.push_str("  Top destinations:\n");
    for d in &a.top_destinations {
        let _ = writeln!(text, "    {} ({} connections)", escape(&d.name), d.count);
    }
    let _ = writeln!(text, "  Protocols: {}", counts(&a.protocols, None));
    if !a.ports.is_empty() {
        let _ = writeln!(text, "  Ports: {}", counts(&a.ports, None));
    }
    let o = &a.outcomes;
    let _ = writeln!(
        text,
        "  TCP results: {} established, {} refused, {} timed out, {} failed",
        o.established, o.refused, o.timed_out, o.failed
    );
    if !a.errors.is_empty() {
        let _ = writeln!(text, "  Errors: {}", counts(&a.errors, None));
    }
    let _ = writeln!(text, "  Processes: {}", counts(&a.processes, None));
    text.trim_end().to_owned()
}

/// `Process 'curl' had 3 packet drops over the last 60 seconds` and one line per reason.
pub fn drop_summary(s: &DropSummary, pid: Option<u32>, name: Option<&str>) -> String {
    let who = subject(pid, name);
    let mut text = if s.count == 0 {
        match &who {
            Some(who) => format!(
                "No packet drops found for {who} in the last {} seconds",
                s.duration_seconds
            ),
            None => format!(
                "No packet drops found in the last {} seconds",
                s.duration_seconds
            ),
        }
    } else {
        let who = who.map_or_else(|| "All processes".to_owned(), |w| capitalized(&w));
        let mut text = format!(
            "{who} had {} packet drops over the last {} seconds",
            s.count, s.duration_seconds
        );
        for r in &s.by_reason {
            let _ = write!(
                text,
                "\n  {}: {} ({})",
                r.reason,
                r.count,
                r.category.replace('_', " ")
            );
        }
        if s.unattributed > 0 {
            let _ = write!(
                text,
                "\n  {} of them without a known owning process",
                s.unattributed
            );
        }
        text
    };
    if s.routine_excluded > 0 {
        let _ = write!(
            text,
            "\n  ({} routine drops, like sockets closing, not counted)",
            s.routine_excluded
        );
    }
    text
}

/// `Recent packet drops (7 total):` then one line per drop.
pub fn drop_list(list: &DropList) -> String {
    if list.matched_events == 0 {
        let mut text = "No packet drops found".to_owned();
        if list.routine_excluded > 0 {
            let _ = write!(text, " ({} routine drops left out)", list.routine_excluded);
        }
        return text;
    }
    let mut drops: Vec<_> = list.events_by_pid.values().flatten().collect();
    drops.sort_by_key(|d| d.timestamp);
    let mut text = format!("Recent packet drops ({} total):\n", list.matched_events);
    for d in &drops {
        let endpoint = |ip: &str, port: Option<u16>| match port {
            Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
            Some(port) => format!("{ip}:{port}"),
            None => ip.to_owned(),
        };
        let owner = if d.attributed {
            format!("{} ({})", escape(&d.command), d.pid)
        } else {
            "unattributed".to_owned()
        };
        let _ = writeln!(
            text,
            "  {} | {} | {} {} -> {} | {} | at {}",
            clock(d.time),
            d.drop_reason,
            if d.protocol.is_empty() {
                "non-IP"
            } else {
                &d.protocol
            },
            endpoint(&d.source_ip, d.source_port),
            endpoint(&d.destination_ip, d.destination_port),
            owner,
            escape(&d.location)
        );
    }
    let more = list.matched_events.saturating_sub(drops.len() as u64);
    if more > 0 {
        let _ = writeln!(text, "  ... and {more} more drops");
    }
    if list.routine_excluded > 0 {
        let _ = writeln!(text, "  ({} routine drops left out)", list.routine_excluded);
    }
    text.trim_end().to_owned()
}

/// One paragraph on the daemon's state, for people.
pub fn health(h: &Health) -> String {
    let probes: Vec<String> = h
        .probes
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p.name,
                p.hook.as_deref().unwrap_or("not attached")
            )
        })
        .collect();
    format!(
        "netspy {} is {} (up {}); probes: {}; events received {}, lost {}",
        h.version,
        h.status,
        h.uptime,
        if probes.is_empty() {
            "none yet".to_owned()
        } else {
            probes.join(", ")
        },
        h.events.received.total(),
        h.events.lost_in_kernel.total()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::OutcomeCounts;

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
            network_summary(&summary(0), None, Some("x\ny")),
            "No network connections found for process 'x\\ny' in the last 60 seconds"
        );
    }

    #[test]
    fn summary_sentences_match_the_original() {
        assert_eq!(
            network_summary(&summary(5), None, Some("curl")),
            "Process 'curl' made 5 outbound connection attempts over the last 60 seconds (TCP: 5 established)"
        );
        assert_eq!(
            network_summary(&summary(0), None, Some("x")),
            "No network connections found for process 'x' in the last 60 seconds"
        );
        assert!(
            network_summary(&summary(2), Some(1234), None)
                .starts_with("PID 1234 made 2 outbound connection attempts")
        );
    }
}
