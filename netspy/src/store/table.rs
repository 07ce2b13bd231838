//! A time-ordered, bounded sequence of records with indexes by pid and by process name.
//!
//! Records get increasing sequence numbers; eviction is always from the front (oldest), so
//! every index list is also in sequence order and loses exactly its front entry. Time windows
//! are found by binary search, so queries by pid, name or window never scan everything.

use std::collections::{HashMap, VecDeque};

use super::intern::Sym;

/// What a table needs to know about its records.
pub trait Record {
    /// Wall-clock nanoseconds since the epoch.
    fn time_ns(&self) -> i64;
    /// Owning process id (0 = unattributed).
    fn pid(&self) -> u32;
    /// Owning process name, if attributed.
    fn command(&self) -> Option<Sym>;
}

/// The records and their indexes.
pub struct Table<R> {
    records: VecDeque<R>,
    first_seq: u64,
    by_pid: HashMap<u32, VecDeque<u64>>,
    by_command: HashMap<Sym, VecDeque<u64>>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Self {
            records: VecDeque::new(),
            first_seq: 0,
            by_pid: HashMap::new(),
            by_command: HashMap::new(),
        }
    }
}

/// Which records a query wants.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only this process id.
    pub pid: Option<u32>,
    /// Only these process names (None = any; empty = none matches).
    pub commands: Option<Vec<Sym>>,
    /// Inclusive lower bound, ns since the epoch.
    pub since_ns: i64,
    /// Exclusive upper bound, ns since the epoch.
    pub until_ns: i64,
}

impl<R: Record> Table<R> {
    /// Appends a record (newest) and returns its sequence number.
    pub fn push(&mut self, record: R) -> u64 {
        let seq = self.first_seq + self.records.len() as u64;
        if record.pid() != 0 {
            self.by_pid.entry(record.pid()).or_default().push_back(seq);
        }
        if let Some(command) = record.command() {
            self.by_command.entry(command).or_default().push_back(seq);
        }
        self.records.push_back(record);
        seq
    }

    /// Removes and returns the oldest record.
    pub fn pop_front(&mut self) -> Option<R> {
        let record = self.records.pop_front()?;
        let seq = self.first_seq;
        self.first_seq += 1;
        if record.pid() != 0 {
            pop_index(&mut self.by_pid, record.pid(), seq);
        }
        if let Some(command) = record.command() {
            pop_index(&mut self.by_command, command, seq);
        }
        Some(record)
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
    /// `get_mut`), to the pid and name indexes, keeping them in sequence order.
    pub fn index_late(&mut self, seq: u64) {
        let Some((pid, command)) = self.get(seq).map(|r| (r.pid(), r.command())) else {
            return;
        };
        if pid != 0 {
            insert_sorted(self.by_pid.entry(pid).or_default(), seq);
        }
        if let Some(command) = command {
            insert_sorted(self.by_command.entry(command).or_default(), seq);
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
        let in_command = move |r: &R| match &sel.commands {
            None => true,
            Some(commands) => r.command().is_some_and(|c| commands.contains(&c)),
        };
        if let Some(pid) = sel.pid {
            let Some(seqs) = self.by_pid.get(&pid) else {
                return Box::new(std::iter::empty());
            };
            return Box::new(self.window_of(seqs, sel).filter(move |r| in_command(r)));
        }
        match sel.commands.as_deref() {
            Some([one]) => match self.by_command.get(one) {
                Some(seqs) => Box::new(self.window_of(seqs, sel)),
                None => Box::new(std::iter::empty()),
            },
            Some(many) => {
                // A glob matched several names: merge their lists in sequence order.
                let mut seqs: Vec<u64> = many
                    .iter()
                    .filter_map(|c| self.by_command.get(c))
                    .flat_map(|list| self.window_seqs(list, sel))
                    .collect();
                seqs.sort_unstable();
                Box::new(seqs.into_iter().filter_map(move |s| self.get(s)))
            }
            None => Box::new(self.records.range(self.time_bounds(sel))),
        }
    }

    /// How many records `select` yields, without visiting them where the indexes allow: a
    /// window of the whole table, of one pid or of some names is two binary searches each;
    /// only a pid and names together walk (the pid's window).
    pub fn count(&self, sel: &Selection) -> usize {
        match (sel.pid, sel.commands.as_deref()) {
            (Some(pid), None) => self
                .by_pid
                .get(&pid)
                .map_or(0, |seqs| self.window_bounds(seqs, sel).len()),
            (Some(_), Some(_)) => self.select(sel).count(),
            (None, Some(names)) => names
                .iter()
                .filter_map(|c| self.by_command.get(c))
                .map(|seqs| self.window_bounds(seqs, sel).len())
                .sum(),
            (None, None) => self.time_bounds(sel).len(),
        }
    }

    /// The positions of the records in the selection's time window.
    fn time_bounds(&self, sel: &Selection) -> std::ops::Range<usize> {
        let start = self.records.partition_point(|r| r.time_ns() < sel.since_ns);
        let end = self.records.partition_point(|r| r.time_ns() < sel.until_ns);
        start..end.max(start)
    }

    /// The positions in an index list of the records in the selection's time window.
    fn window_bounds(&self, seqs: &VecDeque<u64>, sel: &Selection) -> std::ops::Range<usize> {
        let time = |seq: &u64| self.get(*seq).map_or(i64::MIN, Record::time_ns);
        let start = seqs.partition_point(|s| time(s) < sel.since_ns);
        let end = seqs.partition_point(|s| time(s) < sel.until_ns);
        start..end.max(start)
    }

    fn window_seqs<'a>(
        &'a self,
        seqs: &'a VecDeque<u64>,
        sel: &Selection,
    ) -> impl DoubleEndedIterator<Item = u64> + 'a {
        seqs.range(self.window_bounds(seqs, sel)).copied()
    }

    fn window_of<'a>(
        &'a self,
        seqs: &'a VecDeque<u64>,
        sel: &Selection,
    ) -> impl DoubleEndedIterator<Item = &'a R> + 'a {
        self.window_seqs(seqs, sel).filter_map(move |s| self.get(s))
    }
}

fn insert_sorted(list: &mut VecDeque<u64>, seq: u64) {
    let at = list.partition_point(|&s| s < seq);
    if list.get(at) != Some(&seq) {
        list.insert(at, seq);
    }
}

fn pop_index<K: std::hash::Hash + Eq>(index: &mut HashMap<K, VecDeque<u64>>, key: K, seq: u64) {
    if let Some(list) = index.get_mut(&key) {
        if list.front() == Some(&seq) {
            list.pop_front();
        }
        if list.is_empty() {
            index.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::intern::Interner;

    #[derive(Debug, PartialEq)]
    struct R {
        t: i64,
        pid: u32,
        command: Option<Sym>,
    }

    impl Record for R {
        fn time_ns(&self) -> i64 {
            self.t
        }
        fn pid(&self) -> u32 {
            self.pid
        }
        fn command(&self) -> Option<Sym> {
            self.command
        }
    }

    fn table() -> (Table<R>, Sym, Sym) {
        let mut names: Interner<&str> = Interner::default();
        let (curl, dig) = (names.intern("curl").unwrap(), names.intern("dig").unwrap());
        let mut t = Table::default();
        for i in 0..10 {
            let (pid, command) = if i % 2 == 0 { (100, curl) } else { (200, dig) };
            t.push(R {
                t: i * 10,
                pid,
                command: Some(command),
            });
        }
        (t, curl, dig)
    }

    fn times<'a>(it: impl Iterator<Item = &'a R>) -> Vec<i64> {
        it.map(|r| r.t).collect()
    }

    #[test]
    fn selects_by_window_pid_and_command() {
        let (t, curl, dig) = table();
        let all = Selection {
            since_ns: 20,
            until_ns: 60,
            ..Default::default()
        };
        assert_eq!(times(t.select(&all)), vec![20, 30, 40, 50]);
        assert_eq!(times(t.select(&all).rev()), vec![50, 40, 30, 20]);
        let pid = Selection {
            pid: Some(100),
            ..all.clone()
        };
        assert_eq!(times(t.select(&pid)), vec![20, 40]);
        let name = Selection {
            commands: Some(vec![dig]),
            ..all.clone()
        };
        assert_eq!(times(t.select(&name)), vec![30, 50]);
        let both = Selection {
            commands: Some(vec![curl, dig]),
            ..all.clone()
        };
        assert_eq!(times(t.select(&both)), vec![20, 30, 40, 50]);
        let none = Selection {
            commands: Some(vec![]),
            ..all.clone()
        };
        assert_eq!(t.select(&none).count(), 0);
        let mismatch = Selection {
            pid: Some(100),
            commands: Some(vec![dig]),
            ..all
        };
        assert_eq!(t.select(&mismatch).count(), 0);
    }

    #[test]
    fn counts_equal_what_select_yields() {
        let (mut t, curl, dig) = table();
        t.pop_front();
        for since_ns in [0, 15, 20, 95] {
            for until_ns in [0, 45, 60, i64::MAX] {
                for pid in [None, Some(100), Some(200), Some(7)] {
                    for commands in [None, Some(vec![]), Some(vec![curl]), Some(vec![curl, dig])] {
                        let sel = Selection {
                            pid,
                            commands,
                            since_ns,
                            until_ns,
                        };
                        assert_eq!(t.count(&sel), t.select(&sel).count(), "{sel:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn eviction_keeps_indexes_consistent() {
        let (mut t, curl, _) = table();
        assert_eq!(t.pop_front().map(|r| r.t), Some(0));
        assert_eq!(t.pop_front().map(|r| r.t), Some(10));
        let sel = Selection {
            pid: Some(100),
            until_ns: i64::MAX,
            ..Default::default()
        };
        assert_eq!(times(t.select(&sel)), vec![20, 40, 60, 80]);
        let sel = Selection {
            commands: Some(vec![curl]),
            until_ns: i64::MAX,
            ..Default::default()
        };
        assert_eq!(times(t.select(&sel)), vec![20, 40, 60, 80]);
        while t.pop_front().is_some() {}
        assert!(t.by_pid.is_empty() && t.by_command.is_empty());
        assert_eq!(
            t.push(R {
                t: 1,
                pid: 7,
                command: None
            }),
            10,
            "sequence numbers keep growing"
        );
        assert_eq!(t.get_mut(10).map(|r| r.pid), Some(7));
        assert!(t.get_mut(9).is_none());
    }
}
