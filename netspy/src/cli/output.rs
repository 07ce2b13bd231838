//! What the CLI shows: events for people (one line each) or machines (JSON lines), tool
//! answers, errors and warnings, with colour only on a terminal and never with NO_COLOR.
//! The only place that writes to stdout.

use std::io::{self, Write};

use chrono::Local;

use crate::{
    events::{ConnectionEvent, Event, PacketDrop, TcpOutcome, TcpResult},
    query::{ConnectionView, DropView, EventView},
    text::{escape, event_owner, millis},
};

/// Output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `14:02:11 curl(4312) TCP 10.0.0.5:51234 -> 93.184.216.34:443 refused (ECONNREFUSED) 0.4ms`
    Text,
    /// One JSON object per line.
    Json,
}

/// Writes events to stdout.
pub struct Printer {
    format: Format,
    out: io::Stdout,
}

impl Printer {
    /// A printer on stdout.
    pub fn stdout(format: Format) -> Self {
        Self {
            format,
            out: io::stdout(),
        }
    }

    /// Prints one event. `Ok(false)` when stdout was closed by the reader.
    pub fn print(&mut self, event: &Event) -> anyhow::Result<bool> {
        let line = match self.format {
            Format::Text => Line(event).to_string(),
            Format::Json => serde_json::to_string(event)?,
        };
        self.write(&line)
    }

    /// Prints one event of a daemon's stream (its JSON as `/api/events` gives it).
    pub fn print_view(&mut self, view: &EventView) -> anyhow::Result<bool> {
        let line = match self.format {
            Format::Text => view.to_string(),
            Format::Json => serde_json::to_string(view)?,
        };
        self.write(&line)
    }

    fn write(&mut self, line: &str) -> anyhow::Result<bool> {
        let mut out = self.out.lock();
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// True when stdout is a terminal and NO_COLOR is not set.
fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(text: &str, code: &str, terminal: bool) -> String {
    if colour(terminal) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A line of output on stdout (a closed stdout is not an error worth a panic).
pub fn line(text: &str) {
    let _ = writeln!(io::stdout().lock(), "{text}");
}

/// A heading on stdout, bold on a terminal.
pub fn banner(text: &str) {
    line(&paint(
        text,
        "1",
        io::IsTerminal::is_terminal(&io::stdout()),
    ));
}

/// An error for the user on stderr, red on a terminal.
pub fn error(text: &str) {
    let _ = writeln!(
        io::stderr().lock(),
        "{}",
        paint(text, "31", io::IsTerminal::is_terminal(&io::stderr()))
    );
}

/// A warning for the user on stderr, yellow on a terminal.
pub fn warn(text: &str) {
    let _ = writeln!(
        io::stderr().lock(),
        "{}",
        paint(text, "33", io::IsTerminal::is_terminal(&io::stderr()))
    );
}

/// The one-line text form of an event.
pub struct Line<'a>(pub &'a Event);

impl std::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.0.time().with_timezone(&Local).format("%H:%M:%S"),
            self.0
        )
    }
}

impl std::fmt::Display for ConnectionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = self.time.with_timezone(&Local).format("%H:%M:%S");
        let result = call_result(self.error.as_deref(), i64::from(self.return_code));
        write!(
            f,
            "{time} {} connect {} {}",
            crate::text::owner(&self.process_name, &self.command, self.pid, true),
            self.protocol,
            escape(&self.destination),
        )?;
        if let Some(name) = &self.destination_name {
            write!(f, " ({})", escape(name))?;
        }
        write!(f, " {result}")?;
        if let Some(outcome) = &self.outcome {
            write!(f, " {}", outcome.describe())?;
            if let (Some(error), false) = (&self.outcome_error, *outcome == TcpResult::Established)
            {
                write!(f, " ({error})")?;
            }
        }
        match self.latency_ms {
            Some(ms) => write!(f, " {ms:.1}ms"),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for DropView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = self.time.with_timezone(&Local).format("%H:%M:%S");
        let who = match self.attributed {
            true => crate::text::owner(&self.process_name, &self.command, self.pid, true),
            false => "unattributed".to_owned(),
        };
        write!(f, "{time} {who} drop {}", self.drop_reason)?;
        let endpoint = |ip: &str, port: Option<u16>| match (ip.parse(), port) {
            (Ok(ip), Some(port)) => std::net::SocketAddr::new(ip, port).to_string(),
            _ => ip.to_owned(),
        };
        match self.source_ip.is_empty() {
            false => write!(
                f,
                " {} {} -> {}",
                self.protocol,
                endpoint(&self.source_ip, self.source_port),
                endpoint(&self.destination_ip, self.destination_port)
            )?,
            true => write!(f, " ethertype {:#06x}", self.ethertype)?,
        }
        write!(f, " at {}", self.location)
    }
}

/// What a `connect` call returned: `ok`, its errno's name, or the number.
fn call_result(error: Option<&str>, return_code: i64) -> String {
    match (error, return_code) {
        (_, 0) => "ok".to_owned(),
        (Some(name), _) => name.to_owned(),
        (None, code) => format!("error {code}"),
    }
}

impl std::fmt::Display for ConnectionEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let result = call_result(self.error.as_deref(), self.return_code);
        write!(
            f,
            "{} connect {} {}",
            event_owner(Some(&self.process)),
            self.protocol,
            escape(&self.destination.to_string()),
        )?;
        if let Some(name) = &self.destination_name {
            write!(f, " ({})", escape(name))?;
        }
        write!(f, " {result}")?;
        match self.syscall_ns {
            Some(ns) => write!(f, " {}", millis(ns)),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for TcpOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} TCP {} -> {} {}",
            event_owner(self.process.as_ref()),
            self.source,
            self.destination,
            self.result.describe()
        )?;
        if let (Some(error), false) = (&self.error, self.result == TcpResult::Established) {
            write!(f, " ({error})")?;
        }
        if let Some(ns) = self.latency_ns {
            write!(f, " {}", millis(ns))?;
        }
        Ok(())
    }
}

impl std::fmt::Display for PacketDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} drop {}",
            event_owner(self.process.as_ref()),
            self.drop_reason
        )?;
        match (&self.protocol, self.source_ip, self.destination_ip) {
            (Some(proto), Some(src), Some(dst)) => {
                // SocketAddr brackets IPv6 ([::1]:53); without ports the bare address is clearer.
                let endpoint = |ip: std::net::IpAddr, port: Option<u16>| match port {
                    Some(port) => std::net::SocketAddr::new(ip, port).to_string(),
                    None => ip.to_string(),
                };
                write!(
                    f,
                    " {proto} {} -> {}",
                    endpoint(src, self.source_port),
                    endpoint(dst, self.destination_port)
                )?;
            }
            _ => write!(f, " ethertype {:#06x}", self.ethertype)?,
        }
        write!(f, " at {}", self.location)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::events::{Destination, Process};

    fn process() -> Process {
        Process::curl()
    }

    fn strip_time(line: String) -> String {
        line.split_once(' ')
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or(line)
    }

    #[test]
    fn outcome_line_reads_like_the_issue_example() {
        let ev = Event::TcpOutcome(TcpOutcome {
            time: Utc.timestamp_opt(0, 0).unwrap(),
            timestamp_ns: 0,
            process: Some(process()),
            source: "10.0.0.5:51234".parse().unwrap(),
            destination: "93.184.216.34:443".parse().unwrap(),
            result: TcpResult::Refused,
            error: Some("ECONNREFUSED".into()),
            raw_error: 111,
            latency_ns: Some(400_000),
            sock: 1,
        });
        assert_eq!(
            strip_time(Line(&ev).to_string()),
            "curl(4312) TCP 10.0.0.5:51234 -> 93.184.216.34:443 refused (ECONNREFUSED) 0.4ms"
        );
    }

    #[test]
    fn connection_and_drop_lines() {
        let conn = Event::Connection(ConnectionEvent {
            time: Utc.timestamp_opt(0, 0).unwrap(),
            timestamp_ns: 0,
            process: process(),
            fd: 3,
            source: None,
            destination: Destination::Unix {
                path: "@bus".into(),
            },
            address_family: 1,
            protocol: "UNIX".into(),
            socket_type: Some("SOCK_STREAM".into()),
            raw_protocol: 0,
            raw_socktype: 1,
            return_code: -111,
            error: Some("ECONNREFUSED".into()),
            syscall_ns: Some(20_000),
            sock: 1,
            destination_name: None,
        });
        assert_eq!(
            strip_time(Line(&conn).to_string()),
            "curl(4312) connect UNIX @bus ECONNREFUSED 0.0ms"
        );
        let Event::Connection(mut evil) = conn.clone() else {
            unreachable!()
        };
        evil.process.process_name = "esc\x1b[31mRED".into();
        evil.process.command = "thr|x".into();
        evil.destination = Destination::Unix {
            path: "@x\ny".into(),
        };
        assert_eq!(
            strip_time(Line(&Event::Connection(evil)).to_string()),
            "esc\\x1b[31mRED/thr\\|x(4312) connect UNIX @x\\ny ECONNREFUSED 0.0ms"
        );
        let drop = Event::PacketDrop(PacketDrop::tcp_no_socket(
            Utc.timestamp_opt(0, 0).unwrap(),
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
        ));
        assert_eq!(
            strip_time(Line(&drop).to_string()),
            "unattributed drop NO_SOCKET TCP 127.0.0.1:40000 -> 127.0.0.1:9 at tcp_v4_rcv+0x91"
        );
    }
}
