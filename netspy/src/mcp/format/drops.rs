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
