//! Who an event belongs to: process id, user, cgroup, thread name and process name, interned
//! together as one [`Sym`], so a record names its owner in four bytes and the tables keep
//! one index. Owners are found by pid and by either name through two small maps kept beside
//! the interner.

use std::{collections::hash_map::Entry, sync::Arc};

use super::{
    intern::{Interner, Sym},
    resolved::{Resolve, Resolved},
};
use crate::{cgroups::CgroupName, events::Process};

/// A test of names (an owner matches when its process name or its thread name passes), or
/// None for any name.
pub type NameMatch<'a> = Option<&'a dyn Fn(&str) -> bool>;

/// Which owners a question is about; each part None for any.
#[derive(Clone, Copy, Default)]
pub struct OwnerFilter<'a> {
    /// Only this pid.
    pub pid: Option<u32>,
    /// Only owners whose process or thread name passes.
    pub name: NameMatch<'a>,
    /// Only owners in a cgroup whose systemd unit passes.
    pub unit: NameMatch<'a>,
    /// Only owners in a cgroup whose container id passes.
    pub container: NameMatch<'a>,
}

impl OwnerFilter<'_> {
    /// True when any part restricts.
    pub fn restricts(&self) -> bool {
        self.pid.is_some() || self.name.is_some() || self.unit.is_some() || self.container.is_some()
    }
}

/// An event's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// User id (0 where not known: counts of sampled-out drops).
    pub uid: u32,
    /// cgroup v2 id (0 where not known).
    pub cgroup_id: u64,
    /// When the process started, ns since boot (0 where not known).
    pub started_ns: u64,
    /// Thread name, interned in [`Owners`].
    pub command: Sym,
    /// Process name (the main thread's), interned in [`Owners`]; often `command` itself.
    pub process: Sym,
}

/// A process as its executable is looked up: pid, start (ns since boot) and name. The name
/// is part of it because `exec` keeps pid and start: a shell that execs `curl` is another
/// key once its name changes, and the resolver checks the name too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProcessKey {
    /// Process id.
    pub pid: u32,
    /// Start, ns since boot.
    pub started_ns: u64,
    /// The process's name (its main thread's comm).
    pub name: Arc<str>,
}

/// A process: its pid and when it started (ns since boot, 0 where not known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started(pub u32, pub u64);

/// The interned owners and their names.
#[derive(Default)]
pub struct Owners {
    owners: Interner<Owner>,
    names: Interner<Arc<str>>,
    by_pid: super::Map<u32, Vec<Sym>>,
    by_name: super::Map<Sym, Vec<Sym>>,
    cgroups: Resolved<u64, CgroupName>,
    executables: Resolved<ProcessKey, Arc<str>>,
}

impl Owners {
    /// Interns the owner of an event, taking one reference.
    pub fn intern(&mut self, p: &Process) -> Option<Sym> {
        self.intern_parts(
            Started(p.pid, p.started_ns),
            p.uid,
            p.cgroup_id,
            p.command.clone(),
            p.process_name.clone(),
        )
    }

    /// Interns an owner from its parts, taking one reference.
    pub fn intern_parts(
        &mut self,
        Started(pid, started_ns): Started,
        uid: u32,
        cgroup_id: u64,
        command: Arc<str>,
        process: Arc<str>,
    ) -> Option<Sym> {
        let (command, _) = self.names.intern_fresh(command)?;
        let Some((process, _)) = self.names.intern_fresh(process) else {
            self.names.release(command);
            return None;
        };
        let owner = Owner {
            pid,
            uid,
            cgroup_id,
            started_ns,
            command,
            process,
        };
        let Some((sym, fresh)) = self.owners.intern_fresh(owner) else {
            self.names.release(command);
            self.names.release(process);
            return None;
        };
        if fresh {
            if cgroup_id != 0 {
                self.cgroups.hold(cgroup_id);
            }
            if let Some(key) = self.process_key(&owner) {
                self.executables.hold(key);
            }
            self.by_pid.entry(pid).or_default().push(sym);
            self.by_name.entry(command).or_default().push(sym);
            if process != command {
                self.by_name.entry(process).or_default().push(sym);
            }
        } else {
            // The owner holds each name once.
            self.names.release(command);
            self.names.release(process);
        }
        Some(sym)
    }

    /// Drops one reference; the owner (and its name) go when none is left.
    pub fn release(&mut self, sym: Sym) {
        if let Some(owner) = self.owners.release(sym) {
            forget(&mut self.by_pid, owner.pid, sym);
            forget(&mut self.by_name, owner.command, sym);
            forget(&mut self.by_name, owner.process, sym);
            self.cgroups.release(&owner.cgroup_id);
            if let Some(key) = self.process_key(&owner) {
                self.executables.release(&key);
            }
            self.names.release(owner.command);
            self.names.release(owner.process);
        }
    }

    /// An owner.
    pub fn get(&self, sym: Sym) -> Option<&Owner> {
        self.owners.get(sym)
    }

    /// A thread or process name.
    pub fn name(&self, command: Sym) -> Option<&Arc<str>> {
        self.names.get(command)
    }

    /// Names cgroups with `resolver` from now on.
    pub fn set_cgroup_resolver(&mut self, resolver: Arc<dyn Resolve<u64, CgroupName>>) {
        self.cgroups.set_resolver(resolver);
    }

    /// Names processes' executables with `resolver` from now on.
    pub fn set_executable_resolver(&mut self, resolver: Arc<dyn Resolve<ProcessKey, Arc<str>>>) {
        self.executables.set_resolver(resolver);
    }

    /// The names of an owner's cgroup, when they are known.
    pub fn cgroup(&self, owner: &Owner) -> Option<&Arc<CgroupName>> {
        self.cgroups.get(&owner.cgroup_id)
    }

    /// The path of an owner's executable, when it is known.
    pub fn executable(&self, owner: &Owner) -> Option<&Arc<str>> {
        self.executables
            .get(&self.process_key(owner)?)
            .map(|exe| &**exe)
    }

    /// The process an owner's executable is looked up for (none when its start is not
    /// known: a pid alone may be another process's by then).
    fn process_key(&self, owner: &Owner) -> Option<ProcessKey> {
        (owner.started_ns != 0).then_some(())?;
        Some(ProcessKey {
            pid: owner.pid,
            started_ns: owner.started_ns,
            name: self.names.get(owner.process)?.clone(),
        })
    }

    /// The owners `filter` lets through, each once.
    pub fn matching(&self, filter: &OwnerFilter<'_>) -> Vec<Sym> {
        let name_ok = |owner: Sym| match filter.name {
            None => true,
            Some(matches) => self.get(owner).is_some_and(|o| {
                [o.process, o.command]
                    .iter()
                    .any(|&n| self.name(n).is_some_and(|name| matches(name)))
            }),
        };
        let mut found: Vec<Sym> = match (filter.pid, filter.name) {
            (Some(pid), _) => self
                .by_pid
                .get(&pid)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&o| name_ok(o))
                .collect(),
            (None, Some(matches)) => {
                let mut found: Vec<Sym> = self
                    .names
                    .iter()
                    .filter(|(_, name)| matches(name))
                    .filter_map(|(sym, _)| self.by_name.get(&sym))
                    .flatten()
                    .copied()
                    .collect();
                // An owner whose thread and process names both match is listed under each.
                found.sort_unstable();
                found.dedup();
                found
            }
            (None, None) => self.owners.iter().map(|(sym, _)| sym).collect(),
        };
        if filter.unit.is_some() || filter.container.is_some() {
            // An owner whose cgroup has no such name (or no known name) does not pass.
            let passes = |test: NameMatch<'_>, name: Option<&Arc<str>>| {
                test.is_none_or(|test| name.is_some_and(|n| test(n)))
            };
            found.retain(|&sym| {
                let cgroup = self.get(sym).and_then(|o| self.cgroup(o));
                passes(filter.unit, cgroup.and_then(|c| c.unit.as_ref()))
                    && passes(filter.container, cgroup.and_then(|c| c.container.as_ref()))
            });
        }
        found
    }

    /// Distinct owners, names, named cgroups and executables held.
    pub fn len(&self) -> usize {
        self.owners.len() + self.names.len() + self.cgroups.len() + self.executables.len()
    }
}

fn forget<K: std::hash::Hash + Eq>(map: &mut super::Map<K, Vec<Sym>>, key: K, sym: Sym) {
    if let Entry::Occupied(mut entry) = map.entry(key) {
        entry.get_mut().retain(|&s| s != sym);
        if entry.get().is_empty() {
            entry.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::resolved::tests::FixedCgroups;

    fn matching(owners: &Owners, pid: Option<u32>, name: NameMatch<'_>) -> Vec<Sym> {
        owners.matching(&OwnerFilter {
            pid,
            name,
            ..Default::default()
        })
    }

    #[test]
    fn owners_are_found_by_their_cgroup_s_unit_and_container() {
        let id = "ab".repeat(32);
        let docker: &'static str =
            Box::leak(format!("/system.slice/docker-{id}.scope").into_boxed_str());
        let mut owners = Owners::default();
        owners.set_cgroup_resolver(Arc::new(FixedCgroups {
            paths: vec![(7, "/system.slice/nginx.service"), (8, docker)],
            ..Default::default()
        }));
        let nginx = owners
            .intern_parts(Started(10, 0), 0, 7, "nginx".into(), "nginx".into())
            .unwrap();
        let app = owners
            .intern_parts(Started(11, 0), 0, 8, "app".into(), "app".into())
            .unwrap();
        let gone = owners
            .intern_parts(Started(12, 0), 0, 9, "curl".into(), "curl".into())
            .unwrap();
        let nginx_unit = |n: &str| n == "nginx.service";
        let any_scope = |n: &str| n.ends_with(".scope");
        let short_id = |n: &str| n.starts_with("abab");
        let by = |unit: NameMatch<'_>, container: NameMatch<'_>, pid| {
            owners.matching(&OwnerFilter {
                pid,
                unit,
                container,
                ..Default::default()
            })
        };
        assert_eq!(by(Some(&any_scope), None, None), vec![app]);
        assert_eq!(by(None, Some(&short_id), None), vec![app]);
        assert_eq!(by(Some(&nginx_unit), None, Some(11)), vec![]);
        assert_eq!(
            by(None, None, Some(12)),
            vec![gone],
            "an unnamed cgroup's owner"
        );
        assert_eq!(
            owners.cgroup(owners.get(app).unwrap()).map(|c| &*c.path),
            Some(docker)
        );
        assert_eq!(by(Some(&nginx_unit), None, None), vec![nginx]);
        owners.release(nginx);
        let after = owners.matching(&OwnerFilter {
            unit: Some(&nginx_unit),
            ..Default::default()
        });
        assert_eq!(after, vec![]);
    }

    #[test]
    fn owners_are_found_by_pid_and_name_until_released() {
        let mut owners = Owners::default();
        let a = owners
            .intern_parts(Started(10, 0), 0, 7, "curl".into(), "curl".into())
            .unwrap();
        let b = owners
            .intern_parts(Started(10, 0), 0, 7, "worker".into(), "curl".into())
            .unwrap();
        let c = owners
            .intern_parts(Started(20, 0), 0, 7, "curl".into(), "curl".into())
            .unwrap();
        assert_eq!(
            owners.intern_parts(Started(10, 0), 0, 7, "curl".into(), "curl".into()),
            Some(a)
        );
        let curl = |n: &str| n == "curl";
        let worker = |n: &str| n == "worker";
        assert_eq!(matching(&owners, Some(10), None), vec![a, b]);
        assert_eq!(
            matching(&owners, None, Some(&curl)),
            vec![a, b, c],
            "thread worker of process curl matches by its process, once"
        );
        assert_eq!(matching(&owners, Some(10), Some(&curl)), vec![a, b]);
        assert_eq!(matching(&owners, None, Some(&worker)), vec![b]);
        owners.release(a);
        assert_eq!(
            matching(&owners, Some(10), Some(&worker)),
            vec![b],
            "one reference left"
        );
        owners.release(a);
        owners.release(c);
        assert_eq!(matching(&owners, None, Some(&curl)), vec![b]);
        owners.release(b);
        assert!(matching(&owners, None, Some(&curl)).is_empty());
        assert_eq!(owners.len(), 0, "every owner and name released");
        assert_eq!(matching(&owners, Some(20), None), vec![]);
    }
}
