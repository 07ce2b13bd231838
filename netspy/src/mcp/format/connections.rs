//! Connection answers: the network summary and the list of connect attempts.

use std::fmt::Write as _;

use super::{
    capitalized, clock, ended, millis, plural, push_more, push_note, results, subject, tally, who,
    window,
};
use crate::{
    events::TcpResult,
    query::{ConnectionList, ConnectionSummary, ConnectionView, Count, DropSummary},
    text::escape,
};

/// `Process 'curl' made 13 outbound connection attempts over the last 60 seconds (TCP: 3
/// established, 10 refused; 2 failed calls: ENETUNREACH 2)`, then the drops of the same
/// window when there were any (a UDP sender learns of a closed port only from them).
pub fn network_summary(
    s: &ConnectionSummary,
    drops: Option<&DropSummary>,
    pid: Option<u32>,
    name: Option<&str>,
) -> String {
    let who = subject(pid, name);
    let coverage = s.coverage.as_ref();
    let mut text = if s.count == 0 {
        let window = window("in", s.duration_seconds, coverage, s.query_time);
        match who {
            Some(who) => format!("No network connections found for {who}{window}"),
            None => format!("No network connections found{window}"),
        }
    } else {
        let who = who.map_or_else(|| "All processes".to_owned(), |w| capitalized(&w));
        let mut text = format!(
            "{who} made {}{}",
            plural(
                s.count,
                "outbound connection attempt",
                "outbound connection attempts"
            ),
            window("over", s.duration_seconds, coverage, s.query_time)
        );
        let mut parts = Vec::new();
        let tcp = results(&s.outcomes);
        if !tcp.is_empty() {
            parts.push(format!("TCP: {tcp}"));
        }
        if s.failed_calls > 0 {
            let failed = plural(s.failed_calls, "failed call", "failed calls");
            parts.push(match s.call_errors.is_empty() {
                true => failed,
                false => format!("{failed}: {}", tally(&s.call_errors)),
            });
        }
        if !parts.is_empty() {
            let _ = write!(text, " ({})", parts.join("; "));
        }
        text
    };
    if let Some(d) = drops.filter(|d| d.count > 0) {
        let reasons: Vec<Count> = d
            .by_reason
            .iter()
            .map(|r| Count {
                name: r.reason.clone(),
                count: r.count,
            })
            .collect();
        let _ = write!(
            text,
            "\n  Packet drops in the same window: {} ({})",
            d.count,
            tally(&reasons)
        );
    }
    push_note(&mut text, coverage, "connect events");
    text
}

/// What happened to one connect: `established in 0.08 ms`, `refused in 0.05 ms`,
/// `ENETUNREACH`, `no result yet`; "" for a connect without a handshake that worked.
fn connect_result(e: &ConnectionView) -> String {
    let call_error = e.error.as_deref().filter(|&error| error != "EINPROGRESS");
    match (&e.outcome, call_error) {
        (Some(outcome), _) => {
            let mut text = outcome.describe().to_owned();
            if let Some(ms) = e.latency_ms {
                let _ = write!(text, " in {}", millis(ms));
            }
            if let Some(error) = e
                .outcome_error
                .as_deref()
                .filter(|_| *outcome == TcpResult::Failed)
            {
                let _ = write!(text, " ({error})");
            }
            text
        }
        (None, Some(error)) => error.to_owned(),
        (None, None) if e.error.is_some() => "no result yet".to_owned(),
        (None, None) => String::new(),
    }
}

/// `93.184.216.34:443 (example.com)`: the address, and the name the process looked up.
fn destination(e: &ConnectionView) -> String {
    match &e.destination_name {
        Some(name) => format!("{} ({})", escape(&e.destination), escape(name)),
        None => escape(&e.destination).into_owned(),
    }
}

/// `Recent connection events in the last 60 seconds (15 total):` then
/// `  21:05:53 | 127.0.0.1:8080 | TCP | curl (4312) | established in 0.08 ms` lines, then
/// `  ... and 10 more events`.
pub fn connection_list(list: &ConnectionList) -> String {
    let coverage = list.coverage.as_ref();
    let window = window("in", list.duration_seconds, coverage, list.query_time);
    // A server older than netspy's (the original ebpf-server) does not say how many matched.
    let matched = list.matched_events.max(list.total_events as u64);
    if matched == 0 {
        return ended(
            &format!("No connection events found{window}"),
            coverage,
            "connect events",
        );
    }
    let mut events: Vec<_> = list.events_by_pid.values().flatten().collect();
    events.sort_by_key(|e| e.timestamp);
    let mut text = format!("Recent connection events{window} ({} total):\n", matched);
    for e in &events {
        let _ = write!(
            text,
            "  {} | {} | {} | {}",
            clock(e.time),
            destination(e),
            e.protocol,
            who(&e.process_name, &e.command, e.pid, &e.placement),
        );
        let result = connect_result(e);
        if !result.is_empty() {
            let _ = write!(text, " | {result}");
        }
        text.push('\n');
    }
    push_more(
        &mut text,
        matched.saturating_sub(events.len() as u64),
        "more event",
        "more events",
    );
    ended(&text, coverage, "connect events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_say_each_result_and_its_time() {
        let view = |error: Option<&str>, outcome: Option<&str>, latency: Option<f64>| {
            serde_json::from_value::<ConnectionView>(serde_json::json!({
                "id": "1", "type": "connection", "pid": 7, "command": "curl",
                "time": "2026-01-01T00:00:00Z", "timestamp": 0, "destination": "10.0.0.1:80",
                "destination_ip": "10.0.0.1", "destination_port": 80, "address_family": 2,
                "protocol": "TCP", "socket_type": "SOCK_STREAM", "return_code": 0,
                "error": error, "raw_ipv4": 0, "raw_ipv6": vec![0; 16], "raw_protocol": 6,
                "raw_socktype": 1, "uid": 0, "cgroup_id": 0, "outcome": outcome,
                "outcome_error": outcome.filter(|&o| o == "failed").map(|_| "EHOSTUNREACH"),
                "latency_ms": latency, "source": null,
            }))
            .unwrap()
        };
        let cases = [
            (
                Some("EINPROGRESS"),
                Some("established"),
                Some(0.084),
                "established in 0.08 ms",
            ),
            (
                Some("ECONNREFUSED"),
                Some("refused"),
                Some(12.34),
                "refused in 12.3 ms",
            ),
            (
                Some("EINPROGRESS"),
                Some("timed_out"),
                Some(131_000.0),
                "timed out in 131.00 s",
            ),
            (
                None,
                Some("failed"),
                Some(3001.0),
                "failed in 3.00 s (EHOSTUNREACH)",
            ),
            (Some("ENETUNREACH"), None, None, "ENETUNREACH"),
            (Some("EINPROGRESS"), None, None, "no result yet"),
            (None, None, None, ""),
        ];
        for (error, outcome, latency, expected) in cases {
            assert_eq!(connect_result(&view(error, outcome, latency)), expected);
        }
    }
}
