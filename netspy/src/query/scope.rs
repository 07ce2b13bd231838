//! Turning a request's process and window filter into a store selection.

use chrono::Utc;

use super::{QueryError, Scope};
use crate::store::{OwnerFilter, Selection, Store};

/// Longest window anyone may ask for (one year); longer is a mistake, not a wish.
pub const MAX_DURATION_SECONDS: i64 = 365 * 24 * 3600;
/// Longest process-name filter, in characters, on every transport (a real name has at
/// most 15 bytes; a glob a few dozen).
pub const MAX_NAME_CHARS: usize = 1024;

/// How a caller names the request fields whose names differ between transports (the MCP
/// tools keep the original tools' `duration` and `max_events`), so a refusal is in the
/// caller's words while the rules stay here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldNames {
    /// The look-back window in seconds.
    pub duration: &'static str,
    /// How many events a list returns.
    pub limit: &'static str,
}

impl FieldNames {
    /// The REST API's names, which are the query layer's.
    pub const REST: Self = Self {
        duration: "duration_seconds",
        limit: "limit",
    };
}

/// A list's event count: at least 1 (the daemon's cap applies later, and is reported).
pub fn check_limit(limit: Option<i64>, names: FieldNames) -> Result<(), QueryError> {
    match limit {
        Some(n) if n < 1 => Err(bad(&format!("{} must be at least 1, got {n}", names.limit))),
        _ => Ok(()),
    }
}

/// The kernel keeps 15 bytes of a process name.
const COMM_MAX: usize = 15;

/// A resolved filter.
pub struct Resolved {
    /// What to select from the store.
    pub selection: Selection,
    /// The window length reported back, in seconds.
    pub duration_seconds: u64,
    /// The process name filter applied (after alias resolution), "" when none.
    pub command: String,
}

impl Scope {
    /// The process-name filter: `command`, or `process_name` when `command` is absent (the
    /// original API's alias).
    pub fn command_filter(&self) -> Result<Option<&str>, QueryError> {
        for (field, value) in [
            ("command", self.command.as_deref()),
            ("process_name", self.process_name.as_deref()),
        ] {
            if let Some(value) = value {
                text_filter(field, value)?;
            }
        }
        Ok(self.command.as_deref().or(self.process_name.as_deref()))
    }

    /// Checks everything that needs no history: the same rules the request schemas state,
    /// so a client (the REST client, MCP over stdio) refuses what the daemon would refuse,
    /// with the same words.
    pub fn validate(&self) -> Result<(), QueryError> {
        self.check(FieldNames::REST)
    }

    /// [`Scope::validate`], a refusal naming the fields as `names` does.
    pub fn check(&self, names: FieldNames) -> Result<(), QueryError> {
        self.checked(names).map(drop)
    }

    /// [`Scope::check`], giving the filters it built.
    fn checked(&self, names: FieldNames) -> Result<Filters<'_>, QueryError> {
        if let Some(seconds) = self.duration_seconds
            && !(1..=MAX_DURATION_SECONDS).contains(&seconds)
        {
            return Err(bad(&format!(
                "{} must be between 1 and {MAX_DURATION_SECONDS}, got {seconds}",
                names.duration
            )));
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && until <= since
        {
            return Err(bad("until must be after since"));
        }
        let command = match self.command_filter()? {
            Some(pattern) => Some((pattern, NameFilter::new(pattern).map_err(|e| bad(&e))?)),
            None => None,
        };
        let whole = |field: &str, value: Option<&str>| {
            value
                .map(|pattern| {
                    text_filter(field, pattern)?;
                    NameFilter::whole(field, pattern).map_err(|e| bad(&e))
                })
                .transpose()
        };
        Ok(Filters {
            command,
            unit: whole("unit", self.unit.as_deref())?,
            container: whole("container", self.container.as_deref())?,
        })
    }

    /// Resolves against the store. The window is `[since, until)`; without `since` it
    /// reaches back `duration_seconds` (else `default_seconds`, else the retention) from
    /// `until` (default now).
    pub fn resolve(
        &self,
        store: &Store,
        default_seconds: Option<i64>,
    ) -> Result<Resolved, QueryError> {
        let filters = self.checked(FieldNames::REST)?;
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
        let end_ns = until_ns.min(now);
        let since_ns = match self.since {
            Some(since) => clamp(since),
            None => {
                let seconds = self
                    .duration_seconds
                    .or(default_seconds)
                    .unwrap_or(retention)
                    .clamp(1, MAX_DURATION_SECONDS);
                end_ns.saturating_sub(seconds.saturating_mul(1_000_000_000))
            }
        };
        // The window's real length: nothing happened before 1970 or after now.
        let duration_seconds =
            u64::try_from(end_ns.saturating_sub(since_ns.max(0)) / 1_000_000_000).unwrap_or(0);
        let test = |filter: &NameFilter, name: &str| filter.matches(name);
        let command_test = filters
            .command
            .as_ref()
            .map(|(_, f)| move |name: &str| test(f, name));
        let unit_test = filters
            .unit
            .as_ref()
            .map(|f| move |name: &str| test(f, name));
        let container_test = filters
            .container
            .as_ref()
            .map(|f| move |name: &str| test(f, name));
        let owner_filter = OwnerFilter {
            pid: self.pid,
            name: command_test.as_ref().map(|t| t as &dyn Fn(&str) -> bool),
            unit: unit_test.as_ref().map(|t| t as &dyn Fn(&str) -> bool),
            container: container_test.as_ref().map(|t| t as &dyn Fn(&str) -> bool),
        };
        let owners = owner_filter
            .restricts()
            .then(|| store.owners_matching(&owner_filter));
        let command = filters.command.map(|(pattern, _)| pattern);
        Ok(Resolved {
            selection: Selection {
                owners,
                since_ns,
                until_ns,
            },
            duration_seconds,
            command: command.unwrap_or_default().to_owned(),
        })
    }
}

/// The filters a scope asks for, built.
struct Filters<'a> {
    /// The process-name pattern as given, and its filter.
    command: Option<(&'a str, NameFilter)>,
    unit: Option<NameFilter>,
    container: Option<NameFilter>,
}

/// A name, unit or container filter is not empty and at most [`MAX_NAME_CHARS`] long.
fn text_filter(field: &str, value: &str) -> Result<(), QueryError> {
    match value.chars().count() {
        0 => Err(bad(&format!("{field} must not be empty"))),
        n if n > MAX_NAME_CHARS => Err(bad(&format!(
            "{field} must be at most {MAX_NAME_CHARS} characters, got {n}"
        ))),
        _ => Ok(()),
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
    /// The process-name filter for `pattern`, or why the pattern is not a valid glob.
    pub fn new(pattern: &str) -> Result<Self, String> {
        Self::build("process name", pattern, truncate_comm)
    }

    /// A filter of other names (`what`: a unit, a container id), compared whole.
    pub fn whole(what: &str, pattern: &str) -> Result<Self, String> {
        Self::build(what, pattern, itself)
    }

    fn build(what: &str, pattern: &str, exact: fn(&str) -> &str) -> Result<Self, String> {
        if is_glob(pattern) {
            globset::Glob::new(pattern)
                .map(|g| Self::Glob(g.compile_matcher()))
                .map_err(|e| {
                    format!(
                        "invalid {what} pattern {pattern:?}: {}; to match *, ? or [ \
                         itself, put a backslash before it (\\[)",
                        e.kind()
                    )
                })
        } else {
            Ok(Self::Exact(exact(pattern).to_owned()))
        }
    }

    /// The pattern as given (an exact name as the kernel keeps it).
    pub fn pattern(&self) -> &str {
        match self {
            Self::Exact(exact) => exact,
            Self::Glob(glob) => glob.glob().glob(),
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

/// A name compared whole.
fn itself(name: &str) -> &str {
    name
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
    fn a_name_with_pattern_characters_is_asked_for_with_backslashes() {
        let exact = NameFilter::new(r"cu\*rl\?\[x\]").unwrap();
        assert!(exact.matches("cu*rl?[x]"));
        assert!(!exact.matches("curl?x"));
        assert!(!exact.matches("cuXrlYx"));
        let wrong = NameFilter::new("cu*rl?[x").unwrap_err();
        assert!(
            wrong.ends_with("put a backslash before it (\\[)"),
            "{wrong}"
        );
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
        assert_eq!(
            scope(Some("python3"), Some("__main__")).command_filter(),
            Ok(Some("python3")),
            "command wins, as the schema says"
        );
        assert!(scope(Some(""), None).command_filter().is_err());
        assert!(scope(None, Some("")).command_filter().is_err());
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            scope(None, Some(&long)).command_filter(),
            Err(bad(
                "process_name must be at most 1024 characters, got 1025"
            ))
        );
    }

    #[test]
    fn windows_end_at_until_and_are_checked_whatever_else_is_given() {
        let store = Store::new(crate::store::Limits::default());
        let until = chrono::DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let only_until = Scope {
            until: Some(until),
            ..Default::default()
        };
        let resolved = only_until.resolve(&store, Some(60)).unwrap();
        assert_eq!(resolved.duration_seconds, 60);
        assert_eq!(
            resolved.selection.until_ns - resolved.selection.since_ns,
            60_000_000_000
        );
        let ancient = Scope {
            since: Some(
                chrono::DateTime::parse_from_rfc3339("0011-01-13T00:35:01+05:58")
                    .unwrap()
                    .with_timezone(&Utc),
            ),
            ..Default::default()
        };
        let since_1970 = ancient.resolve(&store, Some(60)).unwrap().duration_seconds;
        assert!(
            since_1970.abs_diff(u64::try_from(Utc::now().timestamp()).unwrap()) < 5,
            "the window is reported from 1970, when anything could have been recorded: {since_1970}"
        );
        let out_of_range = Scope {
            duration_seconds: Some(31_536_001),
            since: ancient.since,
            ..Default::default()
        };
        assert!(out_of_range.resolve(&store, Some(60)).is_err());
    }
}
