//! Everything records name by symbol: owners, addresses, kernel names, host names and
//! lookup answers, each interned once with a reference count (see `intern.rs`).

use std::sync::Arc;

use super::{Endpoint, Sym, intern::Interner, owners::Owners};
use crate::events::Process;

/// The store's interned values. A kind's record takes its symbols from here when it is
/// stored and gives them back when it is evicted.
#[derive(Default)]
pub struct Names {
    pub(super) owners: Owners,
    pub(super) endpoints: Interner<Endpoint>,
    pub(super) kernel_names: Interner<Arc<str>>,
    pub(super) host_names: Interner<Arc<str>>,
    pub(super) answer_lists: Interner<Arc<[std::net::IpAddr]>>,
}

impl Names {
    /// The symbol of a process, None only if 4 billion are live.
    pub fn owner(&mut self, process: &Process) -> Option<Sym> {
        self.owners.intern(process)
    }

    /// The symbol of an address or path, None only if 4 billion are live.
    pub fn endpoint(&mut self, endpoint: Endpoint) -> Option<Sym> {
        self.endpoints.intern(endpoint)
    }

    /// The symbol of a host name, None only if 4 billion are live.
    pub fn host_name(&mut self, name: Arc<str>) -> Option<Sym> {
        self.host_names.intern(name)
    }

    /// The symbol of a lookup's answers, None only if 4 billion are live.
    pub fn answer_list(&mut self, answers: Arc<[std::net::IpAddr]>) -> Option<Sym> {
        self.answer_lists.intern(answers)
    }

    /// An evicted record's owner is no longer used by it.
    pub fn release_owner(&mut self, sym: Sym) {
        self.owners.release(sym);
    }

    /// An evicted record's address is no longer used by it.
    pub fn release_endpoint(&mut self, sym: Sym) {
        self.endpoints.release(sym);
    }

    /// An evicted record's host name is no longer used by it.
    pub fn release_host_name(&mut self, sym: Sym) {
        self.host_names.release(sym);
    }

    /// An evicted record's answers are no longer used by it.
    pub fn release_answer_list(&mut self, sym: Sym) {
        self.answer_lists.release(sym);
    }

    /// Distinct values held.
    pub(super) fn len(&self) -> usize {
        self.owners.len()
            + self.endpoints.len()
            + self.kernel_names.len()
            + self.host_names.len()
            + self.answer_lists.len()
    }
}
