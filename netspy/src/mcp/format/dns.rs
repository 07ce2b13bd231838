//! The list of host-name lookups.

use std::fmt::Write as _;

use super::{clock, ended, push_more, who, window};
use crate::{query::DnsList, text::escape};

/// `Recent DNS lookups in the last 60 seconds (2 total, 1 failed):` then
/// `  21:05:53 | example.com -> 93.184.216.34, 2606:2800::1 | curl (4312) | 1.5 ms` lines.
pub fn dns_list(list: &DnsList) -> String {
    let coverage = list.coverage.as_ref();
    let window = window("in", list.duration_seconds, coverage, list.query_time);
    if list.matched_events == 0 {
        return ended(
            &format!("No DNS lookups found{window}"),
            coverage,
            "lookup events",
        );
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
    push_more(
        &mut text,
        list.matched_events.saturating_sub(lookups.len() as u64),
        "more lookup",
        "more lookups",
    );
    ended(&text, coverage, "lookup events")
}
