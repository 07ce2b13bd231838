//! Packet-drop answers: the summary by reason and the list of drops.

use std::fmt::Write as _;

use super::{
    capitalized, collapse, ended, endpoint, plural, push_more, push_note, push_repeated, subject,
    who, window,
};
use crate::{
    query::{DropList, DropSummary},
    text::escape,
};

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

/// `Recent packet drops in the last 60 seconds (7 total):` then a line per distinct drop
/// (reason, addresses, owner, place) at its first time, with how many times it happened
/// and its last time when more than once.
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
    // Each distinct drop once, at its first time, with its count and last time.
    let lines = collapse(drops.iter().map(|d| {
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
        (d.time, what, 1)
    }));
    let mut text = format!("Recent packet drops{window} ({} total):\n", matched);
    for line in &lines {
        push_repeated(&mut text, line, "");
    }
    push_more(
        &mut text,
        matched.saturating_sub(drops.len() as u64),
        "more drop",
        "more drops",
    );
    if list.routine_excluded > 0 {
        let _ = writeln!(
            text,
            "  ({} left out)",
            plural(list.routine_excluded, "routine drop", "routine drops")
        );
    }
    ended(&text, coverage, "drop events")
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::query::DropView;

    fn drop(pid: u32, port: u16, second: i64) -> DropView {
        let time = chrono::DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap();
        DropView {
            id: format!("d{second}"),
            kind: "packet_drop".to_owned(),
            pid,
            command: "curl".to_owned(),
            process_name: "curl".to_owned(),
            drop_reason: "NO_SOCKET".to_owned(),
            drop_reason_code: 2,
            category: "no socket".to_owned(),
            routine: false,
            timestamp: time.timestamp_nanos_opt().unwrap(),
            time,
            location: "udp_queue_rcv_skb+0x1a".to_owned(),
            protocol: "UDP".to_owned(),
            source_ip: "2001:db8::1".to_owned(),
            source_port: Some(5353),
            destination_ip: "2001:db8::2".to_owned(),
            destination_port: Some(port),
            ethertype: 0x86dd,
            attributed: pid != 0,
            uid: 0,
            cgroup_id: 0,
            placement: Default::default(),
            exe: None,
        }
    }

    #[test]
    fn repeated_drops_share_a_line_and_what_was_left_out_is_said() {
        let events = vec![drop(7, 53, 1), drop(0, 9, 2), drop(7, 53, 3)];
        let list = DropList {
            total_events: events.len(),
            total_pids: 1,
            events_by_pid: [("7".to_owned(), events)].into(),
            query_time: Utc::now(),
            message: None,
            matched_events: 5,
            routine_excluded: 1,
            limit: 3,
            limit_capped: false,
            sampled_out: 0,
            duration_seconds: 60,
            coverage: None,
        };
        let text = drop_list(&list);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0], "Recent packet drops in the last 60 seconds (5 total):",
            "{text}"
        );
        let first =
            super::super::clock(chrono::DateTime::from_timestamp(1_700_000_001, 0).unwrap());
        let last = super::super::clock(chrono::DateTime::from_timestamp(1_700_000_003, 0).unwrap());
        assert_eq!(
            lines[1],
            format!(
                "  {first} | NO_SOCKET | UDP [2001:db8::1]:5353 -> [2001:db8::2]:53 | curl (7) \
                 | at udp_queue_rcv_skb+0x1a | 2 times, last {last}"
            ),
            "{text}"
        );
        assert!(
            lines[2].ends_with(" -> [2001:db8::2]:9 | unattributed | at udp_queue_rcv_skb+0x1a"),
            "{text}"
        );
        assert_eq!(
            &lines[3..],
            ["  ... and 2 more drops", "  (1 routine drop left out)"]
        );
    }
}
