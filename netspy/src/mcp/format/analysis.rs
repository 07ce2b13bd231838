//! The pattern analysis of connect attempts.

use std::fmt::Write as _;

use super::{counts, millis, plural, push_note, results, window};
use crate::{query::Analysis, text::escape};

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
