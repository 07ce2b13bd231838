//! Turning a request's process and window filter into a store selection.

use chrono::Utc;

use super::{QueryError, Scope};
use crate::store::{Selection, Store};

/// Longest window anyone may ask for (one year); longer is a mistake, not a wish.
pub const MAX_DURATION_SECONDS: i64 = 365 * 24 * 3600;
/// The kernel keeps 15 bytes of a process name.
const COMM_MAX: usize = 15;

/// A resolved filter.
pub struct Resolved {
    /// What to select from the store.
    pub selection: Selection,
    /// The window length reported back, in seconds.
    pub duration_seconds: u64,
    /// The process name filter as given (after alias resolution), "" when none.
    pub command: String,
}

impl Scope {
    /// The process-name filter, whichever of `command` / `process_name` carries it.
    pub fn command_filter(&self) -> Result<Option<&str>, QueryError> {
        match (self.command.as_deref(), self.process_name.as_deref()) {
            (Some(a), Some(b)) if a != b => Err(QueryError::BadRequest(format!(
                "command ({a:?}) and process_name ({b:?}) disagree; give one of them"
            ))),
            (Some(""), _) | (_, Some("")) => {
                Err(QueryError::BadRequest("command must not be empty".into()))
            }
            (Some(a), _) | (None, Some(a)) => Ok(Some(a)),
            (None, None) => Ok(None),
        }
    }

    /// Resolves against the store; `default_seconds` None means "the whole history".
    pub fn resolve(
        &self,
        store: &Store,
        default_seconds: Option<i64>,
    ) -> Result<Resolved, QueryError> {
        let now = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let retention = i64::try_from(store.limits().max_age.as_secs()).unwrap_or(i64::MAX);
        // Instants beyond what nanoseconds since 1970 can hold (years 1677..2262) clamp:
        // nothing was recorded outside that range anyway.
        let clamp = |t: chrono::DateTime<Utc>| {
            t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
                i64::MIN
            } else {
                i64::MAX
            })
        };
        let until_ns = self.until.map_or(i64::MAX, clamp);
        let (since_ns, duration_seconds) = match (self.since, self.duration_seconds) {
            (Some(since), _) => {
                let since_ns = clamp(since);
                let end = until_ns.min(now);
                (
                    since_ns,
                    u64::try_from(end.saturating_sub(since_ns) / 1_000_000_000).unwrap_or(0),
                )
            }
            (None, requested) => {
                let seconds = requested.or(default_seconds).unwrap_or(retention);
                if !(1..=MAX_DURATION_SECONDS).contains(&seconds) {
                    return Err(bad(&format!(
                        "duration_seconds must be between 1 and {MAX_DURATION_SECONDS}, got {seconds}"
                    )));
                }
                (
                    now.saturating_sub(seconds.saturating_mul(1_000_000_000)),
                    seconds.unsigned_abs(),
                )
            }
        };
        if until_ns <= since_ns {
            return Err(bad("until must be after since"));
        }
        let command = self.command_filter()?;
        let commands = match command {
            None => None,
            Some(pattern) => {
                let filter = NameFilter::new(pattern).map_err(|e| bad(&e))?;
                Some(store.commands_matching(|name| filter.matches(name)))
            }
        };
        Ok(Resolved {
            selection: Selection {
                pid: self.pid,
                commands,
                since_ns,
                until_ns,
            },
            duration_seconds,
            command: command.unwrap_or_default().to_owned(),
        })
    }
}

fn bad(text: &str) -> QueryError {
    QueryError::BadRequest(text.to_owned())
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// A process-name filter: an exact name (compared as the kernel keeps names, at most 15
/// bytes) or, when it has `*`, `?` or `[`, a glob (`python*`).
#[derive(Clone, Debug)]
pub enum NameFilter {
    /// This name, truncated as the kernel truncates it.
    Exact(String),
    /// Names matching this glob.
    Glob(globset::GlobMatcher),
}

impl NameFilter {
    /// The filter for `pattern`, or why the pattern is not a valid glob.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if is_glob(pattern) {
            globset::Glob::new(pattern)
                .map(|g| Self::Glob(g.compile_matcher()))
                .map_err(|e| format!("invalid process name pattern {pattern:?}: {e}"))
        } else {
            Ok(Self::Exact(truncate_comm(pattern).to_owned()))
        }
    }

    /// True when a process named `name` passes.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(exact) => name == exact,
            Self::Glob(glob) => glob.is_match(name),
        }
    }
}

/// `systemd-resolved` is `systemd-resolve` to the kernel: compare what it keeps.
fn truncate_comm(name: &str) -> &str {
    let mut end = name.len().min(COMM_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_compare_as_the_kernel_keeps_them() {
        assert_eq!(truncate_comm("systemd-resolved"), "systemd-resolve");
        assert_eq!(truncate_comm("curl"), "curl");
    }

    #[test]
    fn command_alias_must_agree() {
        let scope = |c: Option<&str>, p: Option<&str>| Scope {
            command: c.map(Into::into),
            process_name: p.map(Into::into),
            ..Default::default()
        };
        assert_eq!(scope(Some("a"), None).command_filter(), Ok(Some("a")));
        assert_eq!(scope(None, Some("b")).command_filter(), Ok(Some("b")));
        assert_eq!(scope(Some("a"), Some("a")).command_filter(), Ok(Some("a")));
        assert!(scope(Some("a"), Some("b")).command_filter().is_err());
        assert!(scope(Some(""), None).command_filter().is_err());
    }
}
