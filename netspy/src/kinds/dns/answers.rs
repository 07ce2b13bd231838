//! Host-name lookup questions: the list of lookups (`getaddrinfo`), with their answers or
//! errors. Connections carry the names themselves (`destination_name`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{StoredLookup, eai_name};
use crate::{
    events::Kind,
    query::{
        CgroupView, Coverage, DEFAULT_WINDOW_SECONDS, EventKind, Filters, ListRequest, Listed,
        Newest, Query, QueryError, by_pid, newest, questions,
    },
    store::{Store, Table},
};

questions! {
    each: each_question;
    /// The most recent host-name lookups.
    ListLookups: "/api/list-dns", ListRequest => DnsList, list_dns;
        summary: "The most recent host-name lookups (getaddrinfo), with their answers or errors, grouped by pid", in "dns";
}

/// Recent host-name lookups grouped by process id.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DnsList {
    /// Lookups returned.
    pub total_events: usize,
    /// Distinct pids among them.
    pub total_pids: usize,
    /// Lookups by pid (as a string key), oldest first within each pid.
    pub events_by_pid: BTreeMap<String, Vec<DnsView>>,
    /// When the question was answered.
    pub query_time: DateTime<Utc>,
    /// Lookups that matched before the limit applied.
    pub matched_events: u64,
    /// Failed lookups among those that matched.
    pub failed: u64,
    /// The limit applied.
    pub limit: usize,
    /// True when the requested limit was above the daemon's maximum and was lowered.
    pub limit_capped: bool,
    /// Window length in seconds.
    pub duration_seconds: u64,
    /// The window, and what the history is missing from it.
    pub coverage: Option<Coverage>,
}

/// One `getaddrinfo` call for a host name.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DnsView {
    /// Stable id within this daemon's history.
    pub id: String,
    /// Always "dns".
    #[serde(rename = "type")]
    pub kind: String,
    /// Process id.
    pub pid: u32,
    /// Name of the calling thread.
    pub command: String,
    /// Name of the process.
    pub process_name: String,
    /// Wall-clock time the call returned (RFC 3339, nanoseconds).
    pub time: DateTime<Utc>,
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// The host name asked for.
    pub name: String,
    /// The name was longer than the 255 bytes kept, and is cut.
    pub name_cut: bool,
    /// The distinct addresses answered (at most 8), in the C library's order.
    pub answers: Vec<String>,
    /// Addresses answered beyond those listed.
    pub more_answers: u32,
    /// What `getaddrinfo` returned: 0, or an `EAI_*` code (negative).
    pub return_code: i32,
    /// The code's name when the lookup failed: `EAI_NONAME` (no such host), `EAI_AGAIN`
    /// (no answer from the resolver in time), `EAI_FAIL`, ...
    pub error: Option<String>,
    /// Time inside the call, milliseconds.
    pub latency_ms: f64,
    /// Real user id.
    pub uid: u32,
    /// cgroup v2 id.
    pub cgroup_id: u64,
    /// The cgroup, unit and container by name.
    #[serde(flatten)]
    pub placement: CgroupView,
    /// The process's executable, when known.
    pub exe: Option<String>,
}

impl DnsView {
    fn new(r: &StoredLookup, store: &Store) -> Self {
        let owner = store.owner(Some(r.owner));
        let pid = owner.map_or(0, |o| o.pid);
        let return_code = i32::from(r.return_code);
        Self {
            id: format!("n{:x}-{pid}", r.time_ns),
            kind: EventKind::Dns.name().to_owned(),
            pid,
            command: store.owner_name(Some(r.owner)).to_string(),
            process_name: store.owner_process_name(Some(r.owner)).to_string(),
            time: DateTime::from_timestamp_nanos(r.time_ns),
            timestamp: r.time_ns,
            name: store.host_name(r.name).to_string(),
            name_cut: r.name_cut,
            answers: store
                .answers(r.answers)
                .iter()
                .map(ToString::to_string)
                .collect(),
            more_answers: u32::from(r.more_answers),
            return_code,
            error: eai_name(return_code).map(str::to_owned),
            latency_ms: f64::from(r.latency_us) / 1000.0,
            uid: owner.map_or(0, |o| o.uid),
            cgroup_id: owner.map_or(0, |o| o.cgroup_id),
            placement: CgroupView::of(store, Some(r.owner)),
            exe: store.executable(Some(r.owner)).map(|e| e.to_string()),
        }
    }
}

impl Listed for StoredLookup {
    type View = DnsView;

    fn table(store: &Store) -> &Table<Self> {
        store.kind_table::<StoredLookup>()
    }

    fn view(&self, store: &Store) -> DnsView {
        DnsView::new(self, store)
    }
}

impl Query {
    /// The most recent matching host-name lookups, grouped by pid.
    pub fn list_dns(&self, req: &ListRequest) -> Result<DnsList, QueryError> {
        let (limit, limit_capped) = self.limit(req.limit)?;
        let store = self.read();
        let scope = req.scope().resolve(&store, Some(DEFAULT_WINDOW_SECONDS))?;
        let Newest { views, matched, .. } =
            newest::<StoredLookup>(&store, &scope.selection, limit, &Filters::default());
        let failed = store
            .kind_table::<StoredLookup>()
            .select(&scope.selection)
            .filter(|r| r.return_code != 0)
            .count() as u64;
        let total_events = views.len();
        let events_by_pid = by_pid(views, |v| v.pid);
        let now = Utc::now();
        Ok(DnsList {
            total_events,
            total_pids: events_by_pid.len(),
            events_by_pid,
            query_time: now,
            matched_events: matched,
            failed,
            limit,
            limit_capped,
            duration_seconds: scope.duration_seconds,
            coverage: Some(Coverage::of(&store, Kind::Dns, &scope.selection, now)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        query::{Status, fixtures},
        store::{Limits, Store},
    };

    #[test]
    fn lookups_are_listed_with_their_answers_and_errors() {
        let query = Query::new(
            Store::new(Limits::default()),
            std::sync::Arc::new(Status::default()),
            100,
        );
        query.ingest(vec![
            fixtures::dns_lookup("example.com", &["93.184.216.34", "2606:2800::1"]),
            fixtures::dns_lookup("nosuch.invalid", &[]),
        ]);
        let list = query.list_dns(&ListRequest::default()).unwrap();
        assert_eq!(
            (list.total_events, list.matched_events, list.failed),
            (2, 2, 1)
        );
        let lookups = &list.events_by_pid["4312"];
        assert_eq!(lookups[0].name, "example.com");
        assert_eq!(lookups[0].answers, ["93.184.216.34", "2606:2800::1"]);
        assert_eq!(
            (lookups[0].error.as_deref(), lookups[0].latency_ms),
            (None, 1.5)
        );
        assert_eq!(lookups[1].name, "nosuch.invalid");
        assert_eq!(lookups[1].error.as_deref(), Some("EAI_NONAME"));
        assert!(lookups[1].answers.is_empty());
        assert_eq!(lookups[1].process_name, "curl");
    }
}
