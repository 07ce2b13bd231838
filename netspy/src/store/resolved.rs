//! Names the store looks up outside the events (a cgroup's path, a process's executable):
//! each key is resolved once, when the first owner with it is interned, and kept while any
//! owner refers to it. So memory is bounded by the owners held, an answer names a thing as
//! it was while the event's process ran (a cgroup removed or a process gone since is still
//! named), and what was gone before it could be resolved stays unnamed, never guessed.

use std::{collections::hash_map::Entry, hash::Hash, sync::Arc};

/// Looks names up (in the kernel, in /proc).
pub trait Resolve<K, V>: Send + Sync {
    /// The name of `key`, or None when it is gone (or cannot be named).
    fn resolve(&self, key: K) -> Option<V>;
}

/// Resolved names by key, with how many owners hold each.
pub struct Resolved<K, V> {
    resolver: Option<Arc<dyn Resolve<K, V>>>,
    held: super::Map<K, Held<V>>,
}

struct Held<V> {
    name: Option<Arc<V>>,
    owners: u32,
}

impl<K, V> Default for Resolved<K, V> {
    fn default() -> Self {
        Self {
            resolver: None,
            held: super::Map::default(),
        }
    }
}

impl<K: Clone + Hash + Eq, V> Resolved<K, V> {
    /// Names keys with `resolver` from now on (none: nothing is named or held).
    pub fn set_resolver(&mut self, resolver: Arc<dyn Resolve<K, V>>) {
        self.resolver = Some(resolver);
    }

    /// One more owner with `key`; the first resolves it.
    pub fn hold(&mut self, key: K) {
        let Some(resolver) = self.resolver.as_ref() else {
            return;
        };
        match self.held.entry(key) {
            Entry::Occupied(mut held) => held.get_mut().owners += 1,
            Entry::Vacant(vacant) => {
                let name = resolver.resolve(vacant.key().clone()).map(Arc::new);
                vacant.insert(Held { name, owners: 1 });
            }
        }
    }

    /// One owner fewer with `key`; the name goes with the last.
    pub fn release(&mut self, key: &K) {
        if let Some(held) = self.held.get_mut(key) {
            held.owners -= 1;
            if held.owners == 0 {
                self.held.remove(key);
            }
        }
    }

    /// The name of `key`, when it was resolved.
    pub fn get(&self, key: &K) -> Option<&Arc<V>> {
        self.held.get(key)?.name.as_ref()
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cgroups::CgroupName;

    /// Names cgroups from a fixed table, counting its calls.
    #[derive(Default)]
    pub struct FixedCgroups {
        pub paths: Vec<(u64, &'static str)>,
        pub calls: AtomicUsize,
    }

    impl Resolve<u64, CgroupName> for FixedCgroups {
        fn resolve(&self, id: u64) -> Option<CgroupName> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let (_, path) = self.paths.iter().find(|(i, _)| *i == id)?;
            Some(CgroupName::of_path(path))
        }
    }

    #[test]
    fn a_key_is_resolved_once_and_kept_while_held() {
        let fixed = Arc::new(FixedCgroups {
            paths: vec![(7, "/system.slice/nginx.service")],
            ..Default::default()
        });
        let mut cgroups = Resolved::default();
        cgroups.hold(7);
        assert_eq!(cgroups.len(), 0, "nothing held without a resolver");
        cgroups.set_resolver(fixed.clone());
        cgroups.hold(7);
        cgroups.hold(7);
        cgroups.hold(9);
        let calls = || fixed.calls.load(Ordering::Relaxed);
        assert_eq!(calls(), 2, "7 and 9 once each");
        assert_eq!(
            cgroups.get(&7).and_then(|n| n.unit.clone()).as_deref(),
            Some("nginx.service")
        );
        assert!(cgroups.get(&9).is_none(), "gone before resolved: unnamed");
        cgroups.release(&7);
        assert!(cgroups.get(&7).is_some(), "one owner left");
        cgroups.release(&7);
        cgroups.release(&9);
        assert_eq!(cgroups.len(), 0);
        cgroups.hold(7);
        assert_eq!(calls(), 3, "resolved again once held again");
    }
}
