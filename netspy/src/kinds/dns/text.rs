//! Host-name lookup texts: the list, a stored lookup's stream line and a live lookup's
//! trace line.

use std::fmt::Write as _;

use chrono::Local;

use super::{DnsList, DnsLookup, DnsView};
use crate::{
    mcp::format::{clock, ended, push_more, who, window},
    text::{escape, event_owner, millis},
};

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

/// `21:05:53 curl(4312) lookup example.com -> 93.184.216.34 1.5ms` (`/api/stream`'s line).
impl std::fmt::Display for DnsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = self.time.with_timezone(&Local).format("%H:%M:%S");
        let who = crate::text::owner(&self.process_name, &self.command, self.pid, true);
        write!(f, "{time} ")?;
        lookup_line(
            f,
            &who,
            &self.name,
            self.error.as_deref(),
            &self.answers,
            self.more_answers,
        )?;
        write!(f, " {:.1}ms", self.latency_ms)
    }
}

/// `curl(4312) lookup example.com -> 93.184.216.34, 2606:2800::1 1.5ms`, or the error.
impl std::fmt::Display for DnsLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let answers: Vec<String> = self.answers.iter().map(ToString::to_string).collect();
        lookup_line(
            f,
            &event_owner(Some(&self.process)),
            &self.name,
            self.error,
            &answers,
            self.more_answers,
        )?;
        write!(f, " {}", millis(self.latency_ns))
    }
}

/// A lookup without its time: who, the name, and the answers (with how many more) or the
/// error; for live events and stored ones alike.
fn lookup_line(
    f: &mut std::fmt::Formatter<'_>,
    who: &str,
    name: &str,
    error: Option<&str>,
    answers: &[impl AsRef<str>],
    more: u32,
) -> std::fmt::Result {
    write!(f, "{who} lookup {}", escape(name))?;
    match error {
        Some(error) => write!(f, " {error}"),
        None => {
            let answers: Vec<&str> = answers.iter().map(AsRef::as_ref).collect();
            write!(f, " -> {}", answers.join(", "))?;
            if more > 0 {
                write!(f, " (+{more})")?;
            }
            Ok(())
        }
    }
}
