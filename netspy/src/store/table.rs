//! A time-ordered, bounded sequence of records with one index: by owner (see `owners.rs`).
//!
//! Records get increasing sequence numbers; eviction is always from the front (oldest), so
//! every index list is also in sequence order and loses exactly its front entry. Index
//! entries are the low 32 bits of a sequence number (a table holds fewer than 2^32 records,
//! so they are read back relative to the oldest). Time windows are found by binary search,
//! so queries by owner or window never scan everything. The record buffer grows to the
//! table's limit and no further, so a full table holds no spare capacity.

use std::{collections::VecDeque, ops::Range};

use super::intern::Sym;

/// What a table needs to know about its records.
pub trait Record {
    /// Wall-clock nanoseconds since the epoch.
    fn time_ns(&self) -> i64;
    /// Owner (see `owners.rs`), if attributed.
    fn owner(&self) -> Option<Sym>;
}

/// The records and their index.
pub struct Table<R> {
    records: VecDeque<R>,
    first_seq: u64,
    by_owner: super::Map<Sym, VecDeque<u32>>,
    limit: usize,
}

impl<R: Record> Default for Table<R> {
    fn default() -> Self {
        Self::new(MAX_RECORDS)
    }
}

/// The most records a table holds (index entries are 32-bit).
pub const MAX_RECORDS: usize = 1 << 31;

/// Which records a query wants.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only these owners (None = any; empty = none matches).
    pub owners: Option<Vec<Sym>>,
    /// Inclusive lower bound, ns since the epoch.
    pub since_ns: i64,
    /// Exclusive upper bound, ns since the epoch.
    pub until_ns: i64,
}

impl<R: Record> Table<R> {
    /// An empty table that will hold at most `limit` records (the caller evicts).
    pub fn new(limit: usize) -> Self {
        Self {
            records: VecDeque::new(),
            first_seq: 0,
            by_owner: super::Map::default(),
            limit: limit.clamp(1, MAX_RECORDS),
        }
    }

    /// Appends a record (newest) and returns its sequence number.
    pub fn push(&mut self, record: R) -> u64 {
        let seq = self.first_seq + self.records.len() as u64;
        if let Some(owner) = record.owner() {
            self.by_owner
                .entry(owner)
                .or_default()
                .push_back(seq as u32);
        }
        let (len, capacity) = (self.records.len(), self.records.capacity());
        if len == capacity && len < self.limit {
            // Double, as VecDeque would, but never past the limit.
            self.records
                .reserve_exact(len.max(1024).min(self.limit - len));
        }
        self.records.push_back(record);
        seq
    }

    /// Removes and returns the oldest record.
    pub fn pop_front(&mut self) -> Option<R> {
        let record = self.records.pop_front()?;
        let seq = self.first_seq;
        self.first_seq += 1;
        if let Some(owner) = record.owner()
            && let Some(list) = self.by_owner.get_mut(&owner)
        {
            if list.front() == Some(&(seq as u32)) {
                list.pop_front();
            }
            if list.is_empty() {
                self.by_owner.remove(&owner);
            }
        }
        Some(record)
    }

    /// The sequence number of the oldest record (of the next one when empty).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The oldest record.
    pub fn front(&self) -> Option<&R> {
        self.records.front()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there is no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A record by sequence number, if still present.
    pub fn get_mut(&mut self, seq: u64) -> Option<&mut R> {
        let index = seq.checked_sub(self.first_seq)?;
        self.records.get_mut(usize::try_from(index).ok()?)
    }

    /// Adds record `seq`, whose owner was learnt after it was stored (and set through
    /// `get_mut`), to the index, keeping it in sequence order.
    pub fn index_late(&mut self, seq: u64) {
        let Some(owner) = self.get(seq).and_then(Record::owner) else {
            return;
        };
        let first = self.first_seq;
        let list = self.by_owner.entry(owner).or_default();
        let at = list.partition_point(|&e| seq_of(first, e) < seq);
        if list.get(at).map(|&e| seq_of(first, e)) != Some(seq) {
            list.insert(at, seq as u32);
        }
    }

    /// True when record `seq` is still held.
    pub fn contains(&self, seq: u64) -> bool {
        self.get(seq).is_some()
    }

    fn get(&self, seq: u64) -> Option<&R> {
        let index = seq.checked_sub(self.first_seq)?;
        self.records.get(usize::try_from(index).ok()?)
    }

    /// Matching records, oldest first (`.rev()` for newest first).
    pub fn select<'a>(
        &'a self,
        sel: &'a Selection,
    ) -> Box<dyn DoubleEndedIterator<Item = &'a R> + 'a> {
        match sel.owners.as_deref() {
            None => Box::new(self.records.range(self.time_bounds(sel))),
            Some([one]) => match self.by_owner.get(one) {
                Some(list) => {
                    Box::new(self.window_seqs(list, sel).filter_map(move |s| self.get(s)))
                }
                None => Box::new(std::iter::empty()),
            },
            Some(many) => {
                // Several owners: merge their lists in sequence order.
                let mut seqs: Vec<u64> = many
                    .iter()
                    .filter_map(|o| self.by_owner.get(o))
                    .flat_map(|list| self.window_seqs(list, sel))
                    .collect();
                seqs.sort_unstable();
                Box::new(seqs.into_iter().filter_map(move |s| self.get(s)))
            }
        }
    }

    /// The records `select` yields, newest first, visiting only as many as are taken: the
    /// owners' index lists are merged from their ends.
    pub fn newest<'a>(&'a self, sel: &'a Selection) -> Box<dyn Iterator<Item = &'a R> + 'a> {
        let Some(owners) = sel.owners.as_deref() else {
            return Box::new(self.records.range(self.time_bounds(sel)).rev());
        };
        let first = self.first_seq;
        let mut lists: Vec<(&VecDeque<u32>, Range<usize>)> = owners
            .iter()
            .filter_map(|o| self.by_owner.get(o))
            .map(|list| (list, self.window_bounds(list, sel)))
            .filter(|(_, range)| !range.is_empty())
            .collect();
        // The newest entry left of each list, largest first.
        let mut heads: std::collections::BinaryHeap<(u64, usize)> = lists
            .iter()
            .enumerate()
            .filter_map(|(i, (list, range))| Some((seq_of(first, *list.get(range.end - 1)?), i)))
            .collect();
        Box::new(std::iter::from_fn(move || {
            let (seq, i) = heads.pop()?;
            let (list, range) = &mut lists[i];
            range.end -= 1;
            if range.end > range.start
                && let Some(&e) = list.get(range.end - 1)
            {
                heads.push((seq_of(first, e), i));
            }
            self.get(seq)
        }))
    }

    /// The sequence numbers a walk of `select`'s records has to cover: the window's for the
    /// whole table, every record's for some owners (each range then searches their lists).
    pub fn select_span(&self, sel: &Selection) -> Range<u64> {
        match sel.owners {
            None => {
                let positions = self.time_bounds(sel);
                self.first_seq + positions.start as u64..self.first_seq + positions.end as u64
            }
            Some(_) => self.first_seq..self.first_seq + self.records.len() as u64,
        }
    }

    /// The records `select` yields among sequence numbers `seqs`, in no particular order.
    pub fn select_seqs<'a>(
        &'a self,
        sel: &'a Selection,
        seqs: Range<u64>,
    ) -> Box<dyn Iterator<Item = &'a R> + 'a> {
        Box::new(self.select_numbered(sel, seqs).map(|(_, r)| r))
    }

    /// [`Table::select_seqs`] with each record's sequence number (in sequence order for
    /// each owner, and overall when the selection has no owner filter).
    pub fn select_numbered<'a>(
        &'a self,
        sel: &'a Selection,
        seqs: Range<u64>,
    ) -> Box<dyn Iterator<Item = (u64, &'a R)> + 'a> {
        let in_window =
            move |(_, r): &(u64, &R)| (sel.since_ns..sel.until_ns).contains(&r.time_ns());
        let first = self.first_seq;
        match &sel.owners {
            Some(owners) => Box::new(
                owners
                    .iter()
                    .filter_map(|o| self.by_owner.get(o))
                    .flat_map(move |list| {
                        let start = list.partition_point(|&e| seq_of(first, e) < seqs.start);
                        let end = list.partition_point(|&e| seq_of(first, e) < seqs.end);
                        list.range(start..end.max(start)).filter_map(move |&e| {
                            let seq = seq_of(first, e);
                            self.get(seq).map(|r| (seq, r))
                        })
                    })
                    .filter(in_window),
            ),
            None => {
                let len = self.records.len() as u64;
                let at =
                    |seq: u64| usize::try_from(seq.saturating_sub(first).min(len)).unwrap_or(0);
                let (start, end) = (at(seqs.start), at(seqs.end));
                Box::new(
                    self.records
                        .range(start..end.max(start))
                        .zip(first + start as u64..)
                        .map(|(r, seq)| (seq, r))
                        .filter(in_window),
                )
            }
        }
    }

    /// The sequence number the next record will have.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.records.len() as u64
    }

    /// The first sequence number whose record's time is at or after `time_ns` (records are
    /// in time order), or [`Table::end_seq`].
    pub fn seq_at_time(&self, time_ns: i64) -> u64 {
        self.first_seq + self.records.partition_point(|r| r.time_ns() < time_ns) as u64
    }

    /// How many records `select` yields, without visiting them: two binary searches per
    /// owner, or two for the whole table.
    pub fn count(&self, sel: &Selection) -> usize {
        match sel.owners.as_deref() {
            None => self.time_bounds(sel).len(),
            Some(owners) => owners
                .iter()
                .filter_map(|o| self.by_owner.get(o))
                .map(|list| self.window_bounds(list, sel).len())
                .sum(),
        }
    }

    /// The positions of the records in the selection's time window.
    fn time_bounds(&self, sel: &Selection) -> Range<usize> {
        let start = self.records.partition_point(|r| r.time_ns() < sel.since_ns);
        let end = self.records.partition_point(|r| r.time_ns() < sel.until_ns);
        start..end.max(start)
    }

    /// The positions in an index list of the records in the selection's time window.
    fn window_bounds(&self, list: &VecDeque<u32>, sel: &Selection) -> Range<usize> {
        let time = |e: &u32| {
            self.get(seq_of(self.first_seq, *e))
                .map_or(i64::MIN, Record::time_ns)
        };
        let start = list.partition_point(|e| time(e) < sel.since_ns);
        let end = list.partition_point(|e| time(e) < sel.until_ns);
        start..end.max(start)
    }

    fn window_seqs<'a>(
        &'a self,
        list: &'a VecDeque<u32>,
        sel: &Selection,
    ) -> impl DoubleEndedIterator<Item = u64> + 'a {
        let first = self.first_seq;
        list.range(self.window_bounds(list, sel))
            .map(move |&e| seq_of(first, e))
    }
}

/// The sequence number of an index entry, given the oldest held (entries of held records
/// are less than 2^32 after it).
fn seq_of(first_seq: u64, entry: u32) -> u64 {
    first_seq + u64::from(entry.wrapping_sub(first_seq as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::intern::Interner;

    #[derive(Debug, PartialEq)]
    struct R {
        t: i64,
        owner: Option<Sym>,
    }

    impl Record for R {
        fn time_ns(&self) -> i64 {
            self.t
        }
        fn owner(&self) -> Option<Sym> {
            self.owner
        }
    }

    fn table() -> (Table<R>, Sym, Sym) {
        let mut names: Interner<&str> = Interner::default();
        let (curl, dig) = (names.intern("curl").unwrap(), names.intern("dig").unwrap());
        let mut t = Table::default();
        for i in 0..10 {
            let owner = if i % 2 == 0 { curl } else { dig };
            t.push(R {
                t: i * 10,
                owner: Some(owner),
            });
        }
        (t, curl, dig)
    }

    fn times<'a>(it: impl Iterator<Item = &'a R>) -> Vec<i64> {
        it.map(|r| r.t).collect()
    }

    #[test]
    fn selects_by_window_and_owner() {
        let (t, curl, dig) = table();
        let all = Selection {
            since_ns: 20,
            until_ns: 60,
            ..Default::default()
        };
        assert_eq!(times(t.select(&all)), vec![20, 30, 40, 50]);
        assert_eq!(times(t.select(&all).rev()), vec![50, 40, 30, 20]);
        let one = Selection {
            owners: Some(vec![dig]),
            ..all.clone()
        };
        assert_eq!(times(t.select(&one)), vec![30, 50]);
        let both = Selection {
            owners: Some(vec![curl, dig]),
            ..all.clone()
        };
        assert_eq!(times(t.select(&both)), vec![20, 30, 40, 50]);
        let none = Selection {
            owners: Some(vec![]),
            ..all
        };
        assert_eq!(t.select(&none).count(), 0);
    }

    #[test]
    fn counts_and_ranges_equal_what_select_yields() {
        let (mut t, curl, dig) = table();
        t.pop_front();
        for since_ns in [0, 15, 20, 95] {
            for until_ns in [0, 45, 60, i64::MAX] {
                for owners in [None, Some(vec![]), Some(vec![curl]), Some(vec![curl, dig])] {
                    let sel = Selection {
                        owners,
                        since_ns,
                        until_ns,
                    };
                    assert_eq!(t.count(&sel), t.select(&sel).count(), "{sel:?}");
                    let span = t.select_span(&sel);
                    let mut chunked: Vec<i64> = (span.start..span.end)
                        .step_by(2)
                        .flat_map(|s| times(t.select_seqs(&sel, s..(s + 2).min(span.end))))
                        .collect();
                    chunked.sort_unstable();
                    assert_eq!(chunked, times(t.select(&sel)), "{sel:?}");
                    let mut newest = times(t.newest(&sel));
                    newest.reverse();
                    assert_eq!(newest, times(t.select(&sel)), "{sel:?}");
                    let mut ranged = times(
                        t.select_seqs(&sel, 0..4)
                            .chain(t.select_seqs(&sel, 4..7))
                            .chain(t.select_seqs(&sel, 7..20)),
                    );
                    ranged.sort_unstable();
                    assert_eq!(ranged, times(t.select(&sel)), "{sel:?}");
                }
            }
        }
    }

    #[test]
    fn eviction_keeps_the_index_consistent_across_32_bit_wraps() {
        let (mut t, curl, _) = table();
        assert_eq!(t.pop_front().map(|r| r.t), Some(0));
        assert_eq!(t.pop_front().map(|r| r.t), Some(10));
        let sel = Selection {
            owners: Some(vec![curl]),
            until_ns: i64::MAX,
            ..Default::default()
        };
        assert_eq!(times(t.select(&sel)), vec![20, 40, 60, 80]);
        while t.pop_front().is_some() {}
        assert!(t.by_owner.is_empty());
        assert_eq!(
            t.push(R { t: 1, owner: None }),
            10,
            "sequence numbers keep growing"
        );
        assert_eq!(t.get_mut(10).map(|r| r.t), Some(1));
        assert!(t.get_mut(9).is_none());
        // Sequence numbers past 2^32 read back from their 32-bit entries.
        t.pop_front();
        t.first_seq = u64::from(u32::MAX) - 2;
        for i in 0..6 {
            t.push(R {
                t: 100 + i,
                owner: Some(curl),
            });
        }
        t.pop_front();
        assert_eq!(times(t.select(&sel)), vec![101, 102, 103, 104, 105]);
        assert_eq!(t.count(&sel), 5);
        let late = u64::from(u32::MAX) + 2;
        if let Some(r) = t.get_mut(late) {
            r.owner = Some(curl);
        }
        t.index_late(late);
        assert_eq!(t.count(&sel), 5, "already indexed: not twice");
    }

    #[test]
    fn a_full_table_holds_no_spare_capacity() {
        let mut t: Table<R> = Table::new(3000);
        for i in 0..3000 {
            t.push(R { t: i, owner: None });
        }
        assert_eq!(t.records.capacity(), 3000);
    }
}
