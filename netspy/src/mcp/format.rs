//! The tools' text answers, in the original netspy's sentences and line formats (the CLI
//! prints exactly these).

use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};

use crate::{
    events::TcpResult,
    query::{
        Analysis, CgroupView, ConnectionList, ConnectionSummary, ConnectionView, Count, Coverage,
        DnsList, DropList, DropSummary, Health, OutcomeCounts, RetransmitSummary,
    },
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

/// `1 connection attempt`, `2 connection attempts`.
fn plural(n: u64, one: &str, many: &str) -> String {
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
fn window(
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
fn push_note(text: &mut String, c: Option<&Coverage>, events: &str) {
    if let Some(note) = coverage_note(c, events) {
        text.push('\n');
        text.push_str(&note);
    }
}

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

/// An event's process, and where it ran when netspy knows: `nginx (4312) in nginx.service`,
/// `app (311) in container 4f2c1e8b9a7d` (a container's short id rather than its scope).
fn who(process: &str, thread: &str, pid: u32, placement: &CgroupView) -> String {
    let owner = crate::text::owner(process, thread, pid, false);
    match (&placement.container, &placement.unit) {
        (Some(id), _) => format!("{owner} in container {}", escape(short_id(id))),
        (None, Some(unit)) => format!("{owner} in {}", escape(unit)),
        (None, None) => owner,
    }
}

/// `93.184.216.34:443 (example.com)`: the address, and the name the process looked up.
fn destination(e: &ConnectionView) -> String {
    match &e.destination_name {
        Some(name) => format!("{} ({})", escape(&e.destination), escape(name)),
        None => escape(&e.destination).into_owned(),
    }
}

/// `Recent DNS lookups in the last 60 seconds (2 total, 1 failed):` then
/// `  21:05:53 | example.com -> 93.184.216.34, 2606:2800::1 | curl (4312) | 1.5 ms` lines.
pub fn dns_list(list: &DnsList) -> String {
    let coverage = list.coverage.as_ref();
    let window = window("in", list.duration_seconds, coverage, list.query_time);
    if list.matched_events == 0 {
        let mut text = format!("No DNS lookups found{window}");
        push_note(&mut text, coverage, "lookup events");
        return text;
    }
    let mut lookups: Vec<_> = list.events_by_pid.values().flatten().collect();
    lookups.sort_by_key(|l| l.timestamp);
    let mut text = format!(
        "Recent DNS lookups{window} ({} total, {} failed):\n",
        list.matched_events, list.failed
    );
    for l in &lookups {
        let answer = match &l.error {
            Some(error) => error.clone(),
            None if l.more_answers > 0 => {
                format!("-> {} (+{})", l.answers.join(", "), l.more_answers)
            }
            None => format!("-> {}", l.answers.join(", ")),
        };
        let _ = writeln!(
            text,
            "  {} | {} {answer} | {} | {:.1} ms",
            clock(l.time),
            escape(&l.name),
            who(&l.process_name, &l.command, l.pid, &l.placement),
            l.latency_ms
        );
    }
    let more = list.matched_events.saturating_sub(lookups.len() as u64);
    if more > 0 {
        let _ = writeln!(
            text,
            "  ... and {}",
            plural(more, "more lookup", "more lookups")
        );
    }
    let mut text = text.trim_end().to_owned();
    push_note(&mut text, coverage, "lookup events");
    text
}

/// The 12 digits of a container id that `docker ps` shows.
fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
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
        let mut text = format!("No connection events found{window}");
        push_note(&mut text, coverage, "connect events");
        return text;
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
    let more = matched.saturating_sub(events.len() as u64);
    if more > 0 {
        let _ = writeln!(
            text,
            "  ... and {}",
            plural(more, "more event", "more events")
        );
    }
    let mut text = text.trim_end().to_owned();
    push_note(&mut text, coverage, "connect events");
    text
}

/// `Connection Analysis:` with top destinations, protocols, ports, results, handshake
/// times and errors.
pub fn analysis(a: &Analysis) -> String {
    let mut text = String::from("Connection Analysis:\n");
    let _ = writeln!(
        text,
        "  Total: {}{} ({:.1}/minute)",
        plural(
            a.total_connections,
            "connection attempt",
            "connection attempts"
        ),
        window("in", a.duration_seconds, a.coverage.as_ref(), a.query_time,),
        a.rate_per_minute
    );
    if a.total_connections == 0 {
        let mut text = text.trim_end().to_owned();
        push_note(&mut text, a.coverage.as_ref(), "connect events");
        push_listed(&mut text, a);
        return text;
    }
    text.push_str("  Top destinations:\n");
    for d in &a.top_destinations {
        let _ = writeln!(
            text,
            "    {} ({})",
            escape(&d.name),
            plural(d.count, "attempt", "attempts")
        );
    }
    let _ = writeln!(text, "  Protocols: {}", counts(&a.protocols, None));
    if !a.ports.is_empty() {
        let _ = writeln!(text, "  Ports: {}", counts(&a.ports, None));
    }
    let tcp = results(&a.outcomes);
    if !tcp.is_empty() {
        let _ = writeln!(text, "  TCP results: {tcp}");
    }
    if let Some(l) = &a.handshake_latency {
        let _ = write!(
            text,
            "  Handshake times ({} established): p50 {}, p99 {}, max {}",
            l.handshakes,
            millis(l.p50_ms),
            millis(l.p99_ms),
            millis(l.max_ms)
        );
        if l.slow > 0 {
            let _ = write!(text, "; {} of 1 s or more", l.slow);
        }
        text.push('\n');
    }
    if !a.errors.is_empty() {
        let _ = writeln!(text, "  Errors: {}", counts(&a.errors, None));
    }
    let _ = writeln!(text, "  Processes: {}", counts(&a.processes, None));
    // Hosts without systemd units (or containers only) have nothing to say here.
    for (label, counted) in [("Units", &a.units), ("Executables", &a.executables)] {
        if counted.iter().any(|c| c.name != crate::query::NONE) {
            let _ = writeln!(text, "  {label}: {}", counts(counted, None));
        }
    }
    let mut text = text.trim_end().to_owned();
    push_note(&mut text, a.coverage.as_ref(), "connect events");
    push_listed(&mut text, a);
    text
}

/// Says that the client computed an analysis from a list, when it did.
fn push_listed(text: &mut String, a: &Analysis) {
    if let Some(l) = a.from_listed_events {
        let _ = write!(
            text,
            "\n  Computed by netspy's client from the connect events the server listed ({} of {} for this process and window; it may not list them all): the server is not a netspy daemon and has no pattern analysis",
            l.matched, l.listed
        );
    }
}

/// `Process 'curl' had 3 packet drops over the last 60 seconds` and one line per reason.
pub fn drop_summary(s: &DropSummary, pid: Option<u32>, name: Option<&str>) -> String {
    let who = subject(pid, name);
    let coverage = s.coverage.as_ref();
    let mut text = if s.count == 0 {
        let window = window("in", s.duration_seconds, coverage, s.query_time);
        match &who {
            Some(who) => format!("No packet drops found for {who}{window}"),
            None => format!("No packet drops found{window}"),
        }
    } else {
        let who = who.map_or_else(|| "All processes".to_owned(), |w| capitalized(&w));
        let mut text = format!(
            "{who} had {}{}",
            plural(s.count, "packet drop", "packet drops"),
            window("over", s.duration_seconds, coverage, s.query_time)
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
            "\n  ({} like sockets closing, not counted)",
            plural(s.routine_excluded, "routine drop", "routine drops")
        );
    }
    push_note(&mut text, coverage, "drop events");
    text
}

/// What a count of retransmissions held: ` (905 segments, 1 SYN)`, the segments only when
/// resends held several (TSO/GSO), empty when there is nothing to add.
fn resend_details(count: u64, segments: u64, syn: u64) -> String {
    let mut details = Vec::new();
    if segments > count {
        details.push(format!("{segments} segments"));
    }
    if syn > 0 {
        details.push(format!("{syn} SYN"));
    }
    match details.is_empty() {
        true => String::new(),
        false => format!(" ({})", details.join(", ")),
    }
}

/// `All processes had 5 TCP retransmissions over the last 60 seconds (3 SYNs sent again):`
/// then each process with its connections, most retransmissions first, each with the
/// segments its resends held when they held several.
pub fn retransmit_summary(s: &RetransmitSummary, pid: Option<u32>, name: Option<&str>) -> String {
    let who = subject(pid, name);
    let coverage = s.coverage.as_ref();
    let mut text = if s.count == 0 {
        let window = window("in", s.duration_seconds, coverage, s.query_time);
        match &who {
            Some(who) => format!("No TCP retransmissions found for {who}{window}"),
            None => format!("No TCP retransmissions found{window}"),
        }
    } else {
        let who = who.map_or_else(|| "All processes".to_owned(), |w| capitalized(&w));
        // Under TSO/GSO one resend holds several segments (what nstat's TcpRetransSegs counts).
        let segments = match s.segments > s.count {
            true => format!(" ({} segments)", s.segments),
            false => String::new(),
        };
        let mut text = format!(
            "{who} had {}{segments}{}",
            plural(s.count, "TCP retransmission", "TCP retransmissions"),
            window("over", s.duration_seconds, coverage, s.query_time)
        );
        if s.syn > 0 {
            let _ = write!(
                text,
                " ({} sent again: connects without an answer)",
                plural(s.syn, "SYN", "SYNs")
            );
        }
        for p in &s.processes {
            let owner = match p.pid {
                0 => "without a known owning process".to_owned(),
                pid => crate::text::owner(&p.process_name, &p.command, pid, true),
            };
            let details = resend_details(p.count, p.segments, p.syn);
            let _ = write!(text, "\n  {owner}: {}{details}", p.count);
            for c in &p.connections {
                let _ = write!(
                    text,
                    "\n    {} -> {}: {}{}, last at {}",
                    c.source,
                    c.destination,
                    c.count,
                    resend_details(c.count, c.segments, c.syn),
                    clock(c.last)
                );
            }
            if p.more_connections > 0 {
                let _ = write!(text, "\n    and {} more connections", p.more_connections);
            }
        }
        if s.more_processes > 0 {
            let _ = write!(text, "\n  and {} more processes", s.more_processes);
        }
        text
    };
    push_note(&mut text, coverage, "retransmission events");
    text
}

/// `Recent packet drops in the last 60 seconds (7 total):` then a line per distinct drop
/// (reason, addresses, owner, place), the latest time first in it and how many times it
/// happened when more than once.
pub fn drop_list(list: &DropList) -> String {
    let coverage = list.coverage.as_ref();
    let window = window("in", list.duration_seconds, coverage, list.query_time);
    // A server older than netspy's (the original ebpf-server) does not say how many matched.
    let matched = list.matched_events.max(list.total_events as u64);
    if matched == 0 {
        let mut text = format!("No packet drops found{window}");
        if list.routine_excluded > 0 {
            let _ = write!(
                text,
                " ({} left out)",
                plural(list.routine_excluded, "routine drop", "routine drops")
            );
        }
        push_note(&mut text, coverage, "drop events");
        return text;
    }
    let mut drops: Vec<_> = list.events_by_pid.values().flatten().collect();
    drops.sort_by_key(|d| d.timestamp);
    let endpoint = |ip: &str, port: Option<u16>| match port {
        Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
        Some(port) => format!("{ip}:{port}"),
        None => ip.to_owned(),
    };
    // Each distinct drop once, at its first time, with its count and last time.
    let mut lines: Vec<(DateTime<Utc>, String, u64, DateTime<Utc>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for d in &drops {
        let owner = if d.attributed {
            who(&d.process_name, &d.command, d.pid, &d.placement)
        } else {
            "unattributed".to_owned()
        };
        let what = format!(
            "{} | {} {} -> {} | {} | at {}",
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
        match index.get(&what).and_then(|&i| lines.get_mut(i)) {
            Some(line) => {
                line.2 += 1;
                line.3 = d.time;
            }
            None => {
                index.insert(what.clone(), lines.len());
                lines.push((d.time, what, 1, d.time));
            }
        }
    }
    let mut text = format!("Recent packet drops{window} ({} total):\n", matched);
    for (first, what, n, last) in &lines {
        let _ = write!(text, "  {} | {what}", clock(*first));
        if *n > 1 {
            let _ = write!(text, " | {n} times, last {}", clock(*last));
        }
        text.push('\n');
    }
    let more = matched.saturating_sub(drops.len() as u64);
    if more > 0 {
        let _ = writeln!(
            text,
            "  ... and {}",
            plural(more, "more drop", "more drops")
        );
    }
    if list.routine_excluded > 0 {
        let _ = writeln!(
            text,
            "  ({} left out)",
            plural(list.routine_excluded, "routine drop", "routine drops")
        );
    }
    let mut text = text.trim_end().to_owned();
    push_note(&mut text, coverage, "drop events");
    text
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
            call_errors: Vec::new(),
            coverage: None,
        }
    }

    #[test]
    fn a_retransmission_summary_says_its_segments_when_resends_held_several() {
        let mut s = RetransmitSummary {
            count: 124,
            segments: 4618,
            syn: 0,
            unattributed: 0,
            pid: 0,
            command: String::new(),
            duration_seconds: 60,
            query_time: Utc::now(),
            processes: Vec::new(),
            more_processes: 0,
            coverage: None,
        };
        let text = retransmit_summary(&s, None, None);
        assert!(
            text.starts_with("All processes had 124 TCP retransmissions (4618 segments) over"),
            "{text}"
        );
        s.segments = 124;
        assert!(!retransmit_summary(&s, None, None).contains("segments"));
        // Each process and connection says what its resends held.
        assert_eq!(resend_details(28, 905, 0), " (905 segments)");
        assert_eq!(resend_details(3, 3, 3), " (3 SYN)");
        assert_eq!(resend_details(4, 6, 1), " (6 segments, 1 SYN)");
        assert_eq!(resend_details(2, 2, 0), "");
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
