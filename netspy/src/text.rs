//! Event strings in text meant for people and terminals. Process names and UNIX socket
//! paths are chosen by whoever runs on the host: printed raw, an escape sequence would
//! command the reader's terminal, a newline would fake a line, a `|` a column. Text answers
//! (CLI, MCP text, `netspy trace`) show them escaped; JSON keeps them exact.

use std::{borrow::Cow, fmt::Write as _};

/// `text` with control characters (C0, DEL, C1), bidirectional overrides, `\` and `|`
/// written as escapes (`\x1b`, `\n`, `\u{202e}`, `\\`, `\|`).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Who an event belongs to, for text: `thrmain (4312)`, or `thrmain (4312, thread
/// worker-thr)` when the calling thread has a name of its own; `compact` (one field of a
/// trace line, no spaces): `thrmain(4312)`, `thrmain/worker-thr(4312)`. Names escaped. An
/// empty process name (a server that does not send it) is taken to be the thread's.
pub fn owner(process: &str, thread: &str, pid: u32, compact: bool) -> String {
    let process = if process.is_empty() { thread } else { process };
    let (process, thread) = (escape(process), escape(thread));
    match (thread.is_empty() || thread == process, compact) {
        (true, true) => format!("{process}({pid})"),
        (true, false) => format!("{process} ({pid})"),
        (false, true) => format!("{process}/{thread}({pid})"),
        (false, false) => format!("{process} ({pid}, thread {thread})"),
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\\' | '|')
        // Marks and overrides that reorder what a terminal shows (Trojan Source).
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Who an event belongs to: `curl(4312)`, or `unattributed`.
pub fn event_owner(process: Option<&crate::events::Process>) -> String {
    match process {
        Some(p) => owner(&p.process_name, &p.command, p.pid, true),
        None => "unattributed".to_owned(),
    }
}

/// A duration in nanoseconds as an event line shows it: `1.5ms`.
pub fn millis(ns: u64) -> String {
    format!("{:.1}ms", ns as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_its_process_with_the_thread_when_it_differs() {
        assert_eq!(owner("curl", "curl", 7, false), "curl (7)");
        assert_eq!(owner("curl", "curl", 7, true), "curl(7)");
        assert_eq!(
            owner("thrmain", "worker-thr", 7, false),
            "thrmain (7, thread worker-thr)"
        );
        assert_eq!(
            owner("", "curl", 7, false),
            "curl (7)",
            "an original server"
        );
        assert_eq!(owner("thrmain", "worker", 7, true), "thrmain/worker(7)");
        assert_eq!(owner("a|b", "c\nd", 7, true), "a\\|b/c\\nd(7)");
    }

    #[test]
    fn terminal_controls_and_separators_are_escaped() {
        assert_eq!(escape("curl"), "curl");
        assert!(matches!(escape("python3.11 ü"), Cow::Borrowed(_)));
        assert_eq!(escape("esc\x1b[31mRED"), "esc\\x1b[31mRED");
        assert_eq!(escape("two\nlines\r"), "two\\nlines\\r");
        assert_eq!(escape("a | b"), "a \\| b");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("\x7f"), "\\x7f");
    }
}
