//! TCP retransmission answers: the summary by process and connection, and the list.

use std::fmt::Write as _;

use chrono::Local;

use super::{RetransmitList, RetransmitSummary, RetransmitView, TcpRetransmit};
use crate::mcp::format::{
    capitalized, clock, collapse, ended, endpoint, plural, push_more, push_note, push_repeated,
    subject, who, window,
};
use crate::text::event_owner;

/// What a count of retransmissions held: ` (905 segments, 1 SYN)`, ` (2 SYN-ACKs)`, the
/// segments only when resends held several (TSO/GSO), empty when there is nothing to add.
fn resend_details(count: u64, segments: u64, syn: u64, syn_ack: u64) -> String {
    let mut details = Vec::new();
    if segments > count {
        details.push(format!("{segments} segments"));
    }
    if syn > 0 {
        details.push(plural(syn, "SYN", "SYNs"));
    }
    if syn_ack > 0 {
        details.push(plural(syn_ack, "SYN-ACK", "SYN-ACKs"));
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
        let mut handshakes = Vec::new();
        if s.syn > 0 {
            handshakes.push(format!(
                "{} sent again: connects without an answer",
                plural(s.syn, "SYN", "SYNs")
            ));
        }
        if s.syn_ack > 0 {
            handshakes.push(format!(
                "{} sent again: handshakes a client left unanswered",
                plural(s.syn_ack, "SYN-ACK", "SYN-ACKs")
            ));
        }
        if !handshakes.is_empty() {
            let _ = write!(text, " ({})", handshakes.join("; "));
        }
        for p in &s.processes {
            let owner = match p.pid {
                0 => "without a known owning process".to_owned(),
                pid => crate::text::owner(&p.process_name, &p.command, pid, true),
            };
            let details = resend_details(p.count, p.segments, p.syn, p.syn_ack);
            let _ = write!(text, "\n  {owner}: {}{details}", p.count);
            for c in &p.connections {
                let _ = write!(
                    text,
                    "\n    {} -> {}: {}{}, last at {}",
                    c.source,
                    c.destination,
                    c.count,
                    resend_details(c.count, c.segments, c.syn, c.syn_ack),
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

/// `Recent TCP retransmissions in the last 60 seconds (12 total):` then one line per
/// process, connection and state, `  21:05:53 | curl (4312) | 10.0.0.1:40000 -> 10.0.0.2:443
/// ESTABLISHED (12 segments) | 4 times, last 21:05:54`: a burst of resends reads as one line.
pub fn retransmit_list(list: &RetransmitList) -> String {
    let coverage = list.coverage.as_ref();
    let window = window("in", list.duration_seconds, coverage, list.query_time);
    if list.matched_events == 0 {
        return ended(
            &format!("No TCP retransmissions found{window}"),
            coverage,
            "retransmission events",
        );
    }
    let mut events: Vec<_> = list.events_by_pid.values().flatten().collect();
    events.sort_by_key(|r| r.timestamp);
    let lines = collapse(events.iter().map(|r| {
        let owner = match r.pid {
            0 => "unattributed".to_owned(),
            pid => who(&r.process_name, &r.command, pid, &r.placement),
        };
        let what = format!(
            "{owner} | {} -> {} {}",
            endpoint(&r.source_ip, Some(r.source_port)),
            endpoint(&r.destination_ip, Some(r.destination_port)),
            r.state
        );
        (r.time, what, u64::from(r.segments))
    }));
    let mut text = format!(
        "Recent TCP retransmissions{window} ({} total):\n",
        list.matched_events
    );
    for line in &lines {
        push_repeated(
            &mut text,
            line,
            &resend_details(line.times, line.weight, 0, 0),
        );
    }
    push_more(
        &mut text,
        list.matched_events.saturating_sub(events.len() as u64),
        "more retransmission",
        "more retransmissions",
    );
    ended(&text, coverage, "retransmission events")
}

/// The stream's line (`netspy stream`): the trace line of a stored retransmission.
impl std::fmt::Display for RetransmitView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = self.time.with_timezone(&Local).format("%H:%M:%S");
        let who = match self.pid {
            0 => "unattributed".to_owned(),
            pid => crate::text::owner(&self.process_name, &self.command, pid, true),
        };
        let endpoint = |ip: &str, port: u16| match ip.parse() {
            Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
            Err(_) => format!("{ip}:{port}"),
        };
        write!(
            f,
            "{time} {who} retransmit TCP {} -> {} {}{}",
            endpoint(&self.source_ip, self.source_port),
            endpoint(&self.destination_ip, self.destination_port),
            self.state,
            segments(self.segments)
        )
    }
}

/// The trace line, after its time: `curl(4312) retransmit TCP 10.0.0.1:40000 ->
/// 10.0.0.2:443 SYN_SENT`.
impl std::fmt::Display for TcpRetransmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} retransmit TCP {} -> {} {}{}",
            event_owner(self.process.as_ref()),
            self.source,
            self.destination,
            self.state_name.unwrap_or("?"),
            segments(self.segments)
        )
    }
}

/// A resend of several segments (a TSO/GSO buffer) says how many.
fn segments(n: u16) -> String {
    match n > 1 {
        true => format!(" ({n} segments)"),
        false => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::kinds::retransmit::RetransmitView;

    #[test]
    fn a_retransmission_summary_says_its_segments_when_resends_held_several() {
        let mut s = RetransmitSummary {
            count: 124,
            segments: 4618,
            syn: 0,
            syn_ack: 0,
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
        assert_eq!(resend_details(28, 905, 0, 0), " (905 segments)");
        assert_eq!(resend_details(3, 3, 3, 0), " (3 SYNs)");
        assert_eq!(resend_details(4, 6, 1, 0), " (6 segments, 1 SYN)");
        assert_eq!(resend_details(2, 2, 0, 2), " (2 SYN-ACKs)");
        assert_eq!(resend_details(2, 2, 0, 0), "");
        // A listener's SYN-ACKs are said apart in the headline, not passed off as data.
        s.syn_ack = 2;
        assert!(
            retransmit_summary(&s, None, None)
                .contains("(2 SYN-ACKs sent again: handshakes a client left unanswered)"),
            "{}",
            retransmit_summary(&s, None, None)
        );
    }

    fn view(pid: u32, port: u16, state: &str, segments: u16, second: i64) -> RetransmitView {
        let time = chrono::DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap();
        RetransmitView {
            id: format!("r{second}"),
            kind: "retransmit".to_owned(),
            pid,
            command: "curl".to_owned(),
            process_name: "curl".to_owned(),
            time,
            timestamp: time.timestamp_nanos_opt().unwrap(),
            source_ip: "10.0.0.1".to_owned(),
            source_port: 40000,
            destination_ip: "10.0.0.2".to_owned(),
            destination_port: port,
            state: state.to_owned(),
            syn: state == "SYN_SENT",
            segments,
            uid: 0,
            cgroup_id: 0,
            placement: Default::default(),
            exe: None,
        }
    }

    #[test]
    fn each_connection_and_state_is_one_line_with_its_count_and_segments() {
        let events = vec![
            view(4312, 443, "ESTABLISHED", 3, 1),
            view(4312, 443, "ESTABLISHED", 1, 2),
            view(4312, 80, "SYN_SENT", 1, 3),
            view(4312, 443, "ESTABLISHED", 2, 4),
        ];
        let list = RetransmitList {
            total_events: events.len(),
            total_pids: 1,
            events_by_pid: [("4312".to_owned(), events)].into(),
            query_time: Utc::now(),
            matched_events: 6,
            limit: 4,
            limit_capped: false,
            duration_seconds: 60,
            coverage: None,
        };
        let text = retransmit_list(&list);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("Recent TCP retransmissions in the last 60 seconds (6 total"),
            "{text}"
        );
        assert!(
            lines[1].contains(
                " | curl (4312) | 10.0.0.1:40000 -> 10.0.0.2:443 ESTABLISHED (6 segments) | 3 \
                 times, last "
            ),
            "{text}"
        );
        assert!(
            lines[2].ends_with(" | curl (4312) | 10.0.0.1:40000 -> 10.0.0.2:80 SYN_SENT"),
            "{text}"
        );
        assert_eq!(lines[3], "  ... and 2 more retransmissions", "{text}");
        assert_eq!(lines.len(), 4, "{text}");
        // A hook that cannot tell the segments (0) adds nothing; one resend of several says
        // its segments without a count.
        let mut single = list.clone();
        single.events_by_pid = [(
            "4312".to_owned(),
            vec![
                view(4312, 443, "ESTABLISHED", 0, 1),
                view(4312, 443, "ESTABLISHED", 0, 2),
                view(4312, 8443, "ESTABLISHED", 5, 3),
            ],
        )]
        .into();
        single.matched_events = 3;
        let text = retransmit_list(&single);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains(":443 ESTABLISHED | 2 times, last "),
            "{text}"
        );
        assert!(
            lines[2].ends_with(":8443 ESTABLISHED (5 segments)"),
            "{text}"
        );
        assert_eq!(lines.len(), 3, "{text}");
        let mut unowned = list.clone();
        unowned.events_by_pid = [("0".to_owned(), vec![view(0, 443, "ESTABLISHED", 1, 1)])].into();
        unowned.matched_events = 1;
        assert!(retransmit_list(&unowned).contains(" | unattributed | 10.0.0.1:40000"));
        unowned.matched_events = 0;
        unowned.events_by_pid.clear();
        assert!(
            retransmit_list(&unowned)
                .starts_with("No TCP retransmissions found in the last 60 seconds")
        );
    }
}
