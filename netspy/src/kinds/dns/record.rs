//! Host-name lookups in the history: one compact record each, the name and the answers
//! interned (a busy host asks for the same few names again and again).

use super::DnsLookup;
use crate::{
    events::nanos,
    store::{KindRecord, Names, Record, Sym},
};

/// One host-name lookup: 32 bytes.
#[derive(Clone, Debug)]
pub struct StoredLookup {
    /// Wall-clock ns since the epoch when the call returned.
    pub time_ns: i64,
    /// Who looked up.
    pub owner: Sym,
    /// The name asked for.
    pub name: Sym,
    /// The distinct addresses answered, None when there were none.
    pub answers: Option<Sym>,
    /// Time inside the call, microseconds.
    pub latency_us: u32,
    /// Addresses answered beyond those kept (at most 255 counted).
    pub more_answers: u8,
    /// What the call returned: 0 or an `EAI_*` code (the C libraries' are -1 to -12).
    pub return_code: i8,
    /// The name was cut.
    pub name_cut: bool,
}

const _: () = assert!(size_of::<StoredLookup>() == 32);

impl Record for StoredLookup {
    fn time_ns(&self) -> i64 {
        self.time_ns
    }
    fn owner(&self) -> Option<Sym> {
        Some(self.owner)
    }
}

impl KindRecord for StoredLookup {
    type Event = DnsLookup;

    fn new(l: &DnsLookup, names: &mut Names) -> Option<Self> {
        let owner = names.owner(&l.process)?;
        let Some(name) = names.host_name(l.name.clone()) else {
            names.release_owner(owner);
            return None;
        };
        let answers = match l.answers.is_empty() {
            true => None,
            false => names.answer_list(l.answers.as_slice().into()),
        };
        Some(Self {
            time_ns: nanos(l.time),
            owner,
            name,
            answers,
            latency_us: u32::try_from(l.latency_ns / 1000).unwrap_or(u32::MAX),
            more_answers: u8::try_from(l.more_answers).unwrap_or(u8::MAX),
            return_code: i8::try_from(l.return_code).unwrap_or(i8::MIN),
            name_cut: l.name_cut,
        })
    }

    fn release(&self, names: &mut Names) {
        names.release_owner(self.owner);
        names.release_host_name(self.name);
        if let Some(answers) = self.answers {
            names.release_answer_list(answers);
        }
    }
}
