//! How the history answers for each kind of event: [`answered_kinds!`] (invoked once, in
//! `crate::kinds`) declares each kind's name, view, list question, whether the stream carries
//! it and whether a search without a `type` includes it. How its stored records are read
//! ([`Listed`]) sits beside its answers; `/api/events`, `/api/stream` and the stream's client
//! read every kind through this file.

use std::ops::Range;

use super::{OutcomeFilter, QueryError, drops::routine_reasons};
pub use crate::kinds::{EventKind, EventView};
use crate::store::{Outcome, Record, Selection, Store, Sym, Table};

/// What a question asks of every kind beyond its scope.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    /// Only connections with this TCP result (kinds without one then match nothing).
    pub outcome: Option<Outcome>,
    /// Drop reasons left out (routine ones, unless asked for).
    pub routine: Vec<Sym>,
}

impl Filters {
    /// The filters of a request, resolved against the store's names.
    pub fn new(
        store: &Store,
        outcome: Option<OutcomeFilter>,
        include_routine: Option<bool>,
    ) -> Self {
        Self {
            outcome: outcome.map(OutcomeFilter::stored),
            routine: match include_routine {
                Some(true) => Vec::new(),
                _ => routine_reasons(store),
            },
        }
    }
}

/// How a kind's stored records are read by the lists, `/api/events` and `/api/stream`.
pub(crate) trait Listed: Record + Sized {
    /// What an answer shows of one record.
    type View;
    /// Whether this kind has a TCP result (an `outcome` filter leaves the others out).
    const HAS_TCP_RESULT: bool = false;

    /// The kind's table.
    fn table(store: &Store) -> &Table<Self>;
    /// Its view.
    fn view(&self, store: &Store) -> Self::View;
    /// Whether the filters can leave a record of this kind out (when not, counts come from
    /// the table's indexes and only the listed records are visited).
    fn filtered(_filters: &Filters) -> bool {
        false
    }
    /// Whether the filters keep this record (the scope is applied before).
    fn keep(&self, _filters: &Filters) -> bool {
        true
    }
}

/// The most recent records of a kind in a selection.
pub(crate) struct Newest<V> {
    /// The views, oldest first.
    pub views: Vec<V>,
    /// Records that matched before the limit applied.
    pub matched: u64,
    /// Records in the selection the filters left out.
    pub left_out: u64,
}

impl<V: Into<EventView>> Newest<V> {
    /// The same with each view as an event of any kind.
    pub(crate) fn into_events(self) -> Newest<EventView> {
        Newest {
            views: self.views.into_iter().map(Into::into).collect(),
            matched: self.matched,
            left_out: self.left_out,
        }
    }
}

/// The most recent `limit` records of kind `R` in `selection` the filters keep.
pub(crate) fn newest<R: Listed>(
    store: &Store,
    selection: &Selection,
    limit: usize,
    filters: &Filters,
) -> Newest<R::View> {
    let table = R::table(store);
    let mut newest = Newest {
        views: Vec::new(),
        matched: 0,
        left_out: 0,
    };
    if R::filtered(filters) {
        for r in table.newest(selection) {
            if !r.keep(filters) {
                newest.left_out += 1;
                continue;
            }
            newest.matched += 1;
            if newest.views.len() < limit {
                newest.views.push(r.view(store));
            }
        }
    } else {
        newest.views = table
            .newest(selection)
            .take(limit)
            .map(|r| r.view(store))
            .collect();
        newest.matched = table.count(selection) as u64;
    }
    newest.views.reverse();
    newest
}

/// Records of kind `R` with sequence numbers in `seqs`, in `selection`, that the filters
/// keep, each with its sequence number.
pub(crate) fn numbered<R: Listed>(
    store: &Store,
    selection: &Selection,
    seqs: Range<u64>,
    filters: &Filters,
) -> Vec<(u64, EventView)>
where
    R::View: Into<EventView>,
{
    R::table(store)
        .select_numbered(selection, seqs)
        .filter(|(_, r)| r.keep(filters))
        .map(|(seq, r)| (seq, r.view(store).into()))
        .collect()
}

/// A kind's table: its first and end sequence numbers, and the end of the records stored
/// before `cutoff`.
pub(crate) fn bounds_of<R: Listed>(store: &Store, cutoff: i64) -> (u64, u64, u64) {
    let table = R::table(store);
    (
        table.first_seq(),
        table.end_seq(),
        table.seq_at_time(cutoff),
    )
}

/// Declares the kinds the history answers for (see `crate::kinds`, which invokes it once):
/// [`EventKind`], [`EventView`] and what reads each. Each entry: the kind's doc, its
/// `Variant = "name"`, its view, its record ([`Listed`]), its list question, whether the
/// stream carries it and whether a search without a `type` includes it.
macro_rules! answered_kinds {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal: $view:ty, $record:ty, $list:ty,
            streamed: $streamed:literal, searched by default: $default:literal;
    )*) => {
        /// Kinds of events.
        #[derive(
            Clone,
            Copy,
            Debug,
            serde::Deserialize,
            serde::Serialize,
            schemars::JsonSchema,
            PartialEq,
            Eq,
        )]
        pub enum EventKind {
            $(
                $(#[$doc])*
                #[serde(rename = $name)]
                $variant,
            )*
        }

        /// One event of any kind (each carries its `type`).
        #[derive(
            Clone,
            Debug,
            serde::Serialize,
            serde::Deserialize,
            schemars::JsonSchema,
            PartialEq,
        )]
        #[serde(untagged)]
        pub enum EventView {
            $(
                #[doc = concat!("One `", $name, "` event.")]
                $variant($view),
            )*
        }

        $(
            impl From<$view> for EventView {
                fn from(view: $view) -> Self {
                    Self::$variant(view)
                }
            }
        )*

        /// The event's one line of text (`netspy stream`).
        impl std::fmt::Display for EventView {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(Self::$variant(v) => std::fmt::Display::fmt(v, f),)*
                }
            }
        }

        impl EventView {
            /// When it happened, ns since the epoch.
            pub(crate) fn timestamp(&self) -> i64 {
                match self {
                    $(Self::$variant(v) => v.timestamp,)*
                }
            }

            /// Its kind.
            pub fn kind(&self) -> EventKind {
                match self {
                    $(Self::$variant(_) => EventKind::$variant,)*
                }
            }
        }

        impl EventKind {
            /// Every kind, in the order answers and the stream list them.
            pub const ALL: &[Self] = &[$(Self::$variant),*];

            /// Its name in requests and answers (the `type` of its events).
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// The kind of this name.
            pub fn named(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// Whether `/api/stream` carries it.
            pub const fn streamed(self) -> bool {
                match self {
                    $(Self::$variant => $streamed,)*
                }
            }

            /// Whether a search without a `type` includes it.
            pub(crate) fn searched_by_default(self) -> bool {
                match self {
                    $(Self::$variant => $default,)*
                }
            }

            /// Where its list is served.
            pub(crate) fn list_path(self) -> &'static str {
                match self {
                    $(Self::$variant => <$list as $crate::query::Question>::PATH,)*
                }
            }

            /// Whether it has a TCP result to filter by.
            pub(crate) fn has_tcp_result(self) -> bool {
                match self {
                    $(Self::$variant => <$record as $crate::query::Listed>::HAS_TCP_RESULT,)*
                }
            }

            /// One event of this kind read from its JSON.
            pub fn parse_view(self, json: &str) -> serde_json::Result<EventView> {
                match self {
                    $(Self::$variant => serde_json::from_str(json).map(EventView::$variant),)*
                }
            }

            /// Its most recent records in a selection (see [`crate::query::newest`]).
            pub(crate) fn newest(
                self,
                store: &$crate::store::Store,
                selection: &$crate::store::Selection,
                limit: usize,
                filters: &$crate::query::Filters,
            ) -> $crate::query::Newest<EventView> {
                match self {
                    $(Self::$variant => $crate::query::newest::<$record>(store, selection, limit, filters).into_events(),)*
                }
            }

            /// Its records with sequence numbers in `seqs` (see [`crate::query::numbered`]).
            pub(crate) fn numbered(
                self,
                store: &$crate::store::Store,
                selection: &$crate::store::Selection,
                seqs: std::ops::Range<u64>,
                filters: &$crate::query::Filters,
            ) -> Vec<(u64, EventView)> {
                match self {
                    $(Self::$variant => $crate::query::numbered::<$record>(store, selection, seqs, filters),)*
                }
            }

            /// Its table's first and end sequence numbers, and the end of the records
            /// stored before `cutoff`.
            pub(crate) fn bounds(self, store: &$crate::store::Store, cutoff: i64) -> (u64, u64, u64) {
                match self {
                    $(Self::$variant => $crate::query::bounds_of::<$record>(store, cutoff),)*
                }
            }
        }
    };
}

pub(crate) use answered_kinds;

impl EventKind {
    /// Whether a search with this `type` and `outcome` filter wants this kind.
    pub(super) fn wanted(self, asked: Option<Self>, outcome: Option<OutcomeFilter>) -> bool {
        self.chosen(asked, outcome, self.searched_by_default())
    }

    /// Whether a follower of the stream with this `type` and `outcome` filter wants this
    /// kind.
    pub(super) fn followed(self, asked: Option<Self>, outcome: Option<OutcomeFilter>) -> bool {
        self.chosen(asked, outcome, self.streamed())
    }

    /// Why an `outcome` filter cannot go with the `type` asked for: only kinds with a TCP
    /// result have one to filter by, so the question would answer nothing, ever.
    pub(super) fn outcome_refusal(
        asked: Option<Self>,
        outcome: Option<OutcomeFilter>,
    ) -> Option<QueryError> {
        let kind = asked?;
        (outcome.is_some() && !kind.has_tcp_result()).then(|| {
            QueryError::BadRequest(format!(
                "outcome filters connections by their TCP result; {} events have none",
                kind.name()
            ))
        })
    }

    /// The kind asked for, or every kind `by_default` holds for; an outcome filter leaves
    /// out kinds without a TCP result.
    fn chosen(self, asked: Option<Self>, outcome: Option<OutcomeFilter>, by_default: bool) -> bool {
        asked.map_or(by_default, |k| k == self) && (outcome.is_none() || self.has_tcp_result())
    }
}

/// How many kinds the stream carries.
const STREAMED_COUNT: usize = {
    let (mut n, mut i) = (0, 0);
    while i < EventKind::ALL.len() {
        n += EventKind::ALL[i].streamed() as usize;
        i += 1;
    }
    n
};

/// The kinds `/api/stream` carries, in the order a step sends them; its cursor has one
/// sequence number for each.
pub(super) const STREAMED: [EventKind; STREAMED_COUNT] = {
    let mut streamed = [EventKind::Connection; STREAMED_COUNT];
    let (mut n, mut i) = (0, 0);
    while i < EventKind::ALL.len() {
        if EventKind::ALL[i].streamed() {
            streamed[n] = EventKind::ALL[i];
            n += 1;
        }
        i += 1;
    }
    streamed
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{EventsRequest, fixtures};

    #[test]
    fn each_kind_has_one_name_in_requests_answers_and_the_stream() {
        for &kind in EventKind::ALL {
            assert_eq!(EventKind::named(kind.name()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        assert_eq!(EventKind::named("tcp_outcome"), None);
        assert_eq!(
            STREAMED,
            [
                EventKind::Connection,
                EventKind::PacketDrop,
                EventKind::Retransmit
            ]
        );
    }

    #[test]
    fn a_search_reads_each_kind_through_its_own_reader() {
        let query = fixtures::ready_query();
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        query.ingest(vec![
            fixtures::udp_connect(now, 42, "curl", 53),
            fixtures::retransmit(Some("curl"), "10.0.0.1:40000", "10.0.0.2:443", false),
            fixtures::dns_lookup("example.com", &["10.0.0.2"]),
        ]);
        let kinds = |req: EventsRequest| -> Vec<EventKind> {
            let answer = query.events(&req).unwrap();
            answer.events.iter().map(EventView::kind).collect()
        };
        // Without a type: the kinds searched by default only.
        assert_eq!(kinds(EventsRequest::default()), [EventKind::Connection]);
        // Each kind when asked for, and each one's JSON read back by its name.
        for kind in [EventKind::Connection, EventKind::Dns, EventKind::Retransmit] {
            let req = EventsRequest {
                kind: Some(kind),
                ..Default::default()
            };
            let answer = query.events(&req).unwrap();
            assert_eq!(
                (answer.events.len(), answer.total_count),
                (1, 1),
                "{kind:?}"
            );
            let view = &answer.events[0];
            assert_eq!(view.kind(), kind);
            let json = serde_json::to_string(view).unwrap();
            assert_eq!(&kind.parse_view(&json).unwrap(), view, "{json}");
            let fields: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(fields["type"], kind.name(), "{json}");
        }
        // An outcome filter leaves out the kinds without a TCP result, also when one of
        // them is asked for (the answer is empty, not refused: the schema allows the pair).
        let every_kind = EventsRequest {
            kind: None,
            outcome: Some(OutcomeFilter(None)),
            ..Default::default()
        };
        assert_eq!(kinds(every_kind), [EventKind::Connection]);
        let retransmits_by_outcome = EventsRequest {
            kind: Some(EventKind::Retransmit),
            outcome: Some(OutcomeFilter(None)),
            ..Default::default()
        };
        assert_eq!(kinds(retransmits_by_outcome), []);
    }

    #[test]
    fn the_stream_refuses_a_kind_it_does_not_carry_saying_where_it_is() {
        let lookups = crate::query::StreamRequest {
            kind: Some(EventKind::Dns),
            ..Default::default()
        };
        let err = lookups.validate().unwrap_err().to_string();
        assert!(err.contains("/api/list-dns"), "{err}");
        assert!(err.contains("connection, packet_drop, retransmit"), "{err}");
    }
}
