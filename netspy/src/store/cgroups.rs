//! The names of the cgroups that held owners are in: each cgroup id is resolved once, when
//! the first owner in it is interned, and kept while any owner refers to it. So memory is
//! bounded by the owners held, an answer about an event names the cgroup as it was while
//! the event's process ran (a cgroup removed since is still named), and a cgroup that was
//! gone before it could be resolved stays unnamed (reported by its id).

use std::{collections::hash_map::Entry, sync::Arc};

use crate::cgroups::{CgroupName, ResolveCgroup};

/// Resolved cgroups, by id, with how many owners hold each.
#[derive(Default)]
pub struct Cgroups {
    resolver: Option<Arc<dyn ResolveCgroup>>,
    held: super::Map<u64, Held>,
}

struct Held {
    name: Option<Arc<CgroupName>>,
    owners: u32,
}

impl Cgroups {
    /// Names cgroups with `resolver` from now on (none: cgroups stay unnamed).
    pub fn set_resolver(&mut self, resolver: Arc<dyn ResolveCgroup>) {
        self.resolver = Some(resolver);
    }

    /// One more owner in cgroup `id`; the first resolves it (0 is no cgroup known; without a
    /// resolver nothing is held).
    pub fn hold(&mut self, id: u64) {
        let Some(resolver) = self.resolver.as_ref().filter(|_| id != 0) else {
            return;
        };
        match self.held.entry(id) {
            Entry::Occupied(mut held) => held.get_mut().owners += 1,
            Entry::Vacant(vacant) => {
                let name = resolver.resolve(id).map(Arc::new);
                vacant.insert(Held { name, owners: 1 });
            }
        }
    }

    /// One owner fewer in cgroup `id`; the name goes with the last.
    pub fn release(&mut self, id: u64) {
        if let Entry::Occupied(mut held) = self.held.entry(id) {
            held.get_mut().owners -= 1;
            if held.get().owners == 0 {
                held.remove();
            }
        }
    }

    /// The names of cgroup `id`, when it was resolved.
    pub fn name(&self, id: u64) -> Option<&Arc<CgroupName>> {
        self.held.get(&id)?.name.as_ref()
    }

    /// Cgroups held.
    pub fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Resolves ids from a fixed table, counting its calls.
    #[derive(Default)]
    pub struct FixedCgroups {
        pub paths: Vec<(u64, &'static str)>,
        pub calls: std::sync::atomic::AtomicUsize,
    }

    impl ResolveCgroup for FixedCgroups {
        fn resolve(&self, id: u64) -> Option<CgroupName> {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (_, path) = self.paths.iter().find(|(i, _)| *i == id)?;
            Some(CgroupName::of_path(path))
        }
    }

    #[test]
    fn a_cgroup_is_resolved_once_and_kept_while_held() {
        let fixed = Arc::new(FixedCgroups {
            paths: vec![(7, "/system.slice/nginx.service")],
            ..Default::default()
        });
        let mut cgroups = Cgroups::default();
        cgroups.set_resolver(fixed.clone());
        cgroups.hold(7);
        cgroups.hold(7);
        cgroups.hold(9);
        cgroups.hold(0);
        let calls = || fixed.calls.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(calls(), 2, "7 and 9 once each; 0 never");
        assert_eq!(
            cgroups.name(7).and_then(|n| n.unit.clone()).as_deref(),
            Some("nginx.service")
        );
        assert!(cgroups.name(9).is_none(), "gone before resolved: unnamed");
        cgroups.release(7);
        assert!(cgroups.name(7).is_some(), "one owner left");
        cgroups.release(7);
        cgroups.release(9);
        assert_eq!(cgroups.len(), 0);
        cgroups.hold(7);
        assert_eq!(calls(), 3, "resolved again once held again");
    }
}
