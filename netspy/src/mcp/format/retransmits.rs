//! The TCP retransmission summary.

use std::fmt::Write as _;

use super::{capitalized, clock, plural, push_note, subject, window};
use crate::query::RetransmitSummary;

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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

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
}
