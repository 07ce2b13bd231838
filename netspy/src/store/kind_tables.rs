//! Kinds whose events the history keeps one record each, in a table of their own, with
//! nothing joined to them: a kind says how its record is made, what it gives back when
//! evicted and what it counts in `/metrics` ([`KindRecord`]); `kind_tables!` (invoked once
//! in `crate::kinds`) makes their tables and how the store keeps, evicts and counts them.

use super::{Names, Record, totals::FamilyCounter};

/// A per-process counter family a kind adds to `/metrics`.
#[derive(Debug)]
pub struct FamilySpec {
    /// Its name, after `netspy_` and before `_total`.
    pub name: &'static str,
    /// What it counts, for people.
    pub help: &'static str,
    /// The label besides `process`.
    pub label: &'static str,
}

/// A kind's record in a table of its own.
pub trait KindRecord: Record + Sized {
    /// The event it keeps.
    type Event;
    /// Its per-process counter families in `/metrics`, counted since start.
    const FAMILIES: &'static [FamilySpec] = &[];

    /// The record of `event`, its symbols taken from `names`; None when a symbol it cannot
    /// go without could not be had (4 billion live), and the event is not kept.
    fn new(event: &Self::Event, names: &mut Names) -> Option<Self>;
    /// Gives back what the record took from `names` (it is evicted).
    fn release(&self, names: &mut Names);
    /// Counts `event` in the kind's families.
    fn count(_event: &Self::Event, _counter: &mut FamilyCounter<'_>) {}
}

/// Declares the tables of the kinds kept whole (see `crate::kinds`): each entry is a doc
/// naming the kind's records (" held." and " evicted" follow it), then
/// `Variant: RecordType => (held, evicted)`, the kind's [`Kind`] and `Event` variant, its
/// [`KindRecord`] and the names of its counts in the store's statistics.
macro_rules! kind_tables {
    ($(#[doc = $doc:literal] $variant:ident: $record:ty => ($held:ident, $evicted:ident),)*) => {
        /// The tables of the kinds kept whole.
        pub struct KindTables {
            $($held: $crate::store::Table<$record>,)*
        }

        /// A table of [`KindTables`].
        pub trait InKindTables: $crate::store::KindRecord {
            /// Its table.
            fn table(tables: &KindTables) -> &$crate::store::Table<Self>;
        }

        $(impl InKindTables for $record {
            fn table(tables: &KindTables) -> &$crate::store::Table<Self> {
                &tables.$held
            }
        })*

        /// Records held and evicted, per kind kept whole.
        #[derive(
            Clone,
            Copy,
            Debug,
            Default,
            PartialEq,
            Eq,
            serde::Serialize,
            serde::Deserialize,
            schemars::JsonSchema,
        )]
        pub struct KindTableStats {
            $(
                #[doc = concat!($doc, " held.")]
                #[serde(default)]
                pub $held: u64,
                #[doc = concat!($doc, " evicted, for either cause.")]
                #[serde(default)]
                pub $evicted: u64,
            )*
        }

        impl KindTableStats {
            /// Held and evicted, per kind.
            pub fn by_kind(&self) -> impl Iterator<Item = ($crate::events::Kind, $crate::store::Kept)> {
                [$((
                    $crate::events::Kind::$variant,
                    $crate::store::Kept { held: self.$held, evicted: self.$evicted },
                )),*]
                .into_iter()
            }
        }

        impl KindTables {
            /// The kinds kept here.
            pub const KINDS: &'static [$crate::events::Kind] = &[$($crate::events::Kind::$variant),*];

            /// Empty tables of at most `max` records each.
            pub fn new(max: usize) -> Self {
                Self {
                    $($held: $crate::store::Table::new(max),)*
                }
            }

            /// Keeps `event` of a kind kept whole, counting it in `totals` (the store keeps
            /// the layers' kinds itself and never hands them here).
            pub fn keep(
                &mut self,
                event: $crate::events::Event,
                names: &mut $crate::store::Names,
                totals: &mut $crate::store::Totals,
            ) {
                match event {
                    $($crate::events::Event::$variant(e) => {
                        // A kind without families counts nothing, and takes no place among
                        // the processes `/metrics` names.
                        if !<$record as $crate::store::KindRecord>::FAMILIES.is_empty() {
                            let owner = $crate::events::Happened::process(&e)
                                .map(|p| &p.process_name);
                            <$record as $crate::store::KindRecord>::count(
                                &e,
                                &mut totals.kind_event(owner, $crate::events::Kind::$variant),
                            );
                        }
                        if let Some(record) = <$record as $crate::store::KindRecord>::new(&e, names) {
                            self.$held.push(record);
                        }
                    })*
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }

            /// Evicts the oldest records while `over(table length, oldest time)` says so,
            /// telling `evicted` of each; how many were evicted.
            pub fn evict(
                &mut self,
                names: &mut $crate::store::Names,
                over: impl Fn(usize, i64) -> bool,
                mut evicted: impl FnMut($crate::events::Kind, i64),
            ) -> u64 {
                let mut n = 0;
                $(
                    while let Some(time_ns) = self.$held.front().map($crate::store::Record::time_ns) {
                        if !over(self.$held.len(), time_ns) {
                            break;
                        }
                        if let Some(r) = self.$held.pop_front() {
                            evicted($crate::events::Kind::$variant, time_ns);
                            $crate::store::KindRecord::release(&r, names);
                            n += 1;
                        }
                    }
                )*
                n
            }

            /// What the tables hold, with `evicted` per kind.
            pub fn stats(&self, evicted: &$crate::events::KindCounts) -> KindTableStats {
                KindTableStats {
                    $(
                        $held: self.$held.len() as u64,
                        $evicted: evicted.get($crate::events::Kind::$variant),
                    )*
                }
            }

            /// Every kind's counter families.
            pub fn families() -> impl Iterator<
                Item = ($crate::events::Kind, &'static [$crate::store::FamilySpec]),
            > {
                [$((
                    $crate::events::Kind::$variant,
                    <$record as $crate::store::KindRecord>::FAMILIES,
                )),*]
                .into_iter()
            }
        }
    };
}
pub(crate) use kind_tables;
