//! Where an event's process ran: its cgroup, systemd unit and container, as answers carry
//! them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::store::{Store, Sym};

/// An event's cgroup by name (each None when not known: no cgroup, or one removed before
/// netspy could name it; the event's `cgroup_id` still says which).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct CgroupView {
    /// The cgroup's path from the cgroup2 root: `/system.slice/nginx.service`.
    #[serde(default)]
    pub cgroup: Option<String>,
    /// The innermost systemd unit on that path: `nginx.service`, `session-3.scope`.
    #[serde(default)]
    pub unit: Option<String>,
    /// The container id (64 hex digits), when the cgroup is a container's.
    #[serde(default)]
    pub container: Option<String>,
}

impl CgroupView {
    /// The cgroup names of an event's owner.
    pub(crate) fn of(store: &Store, owner: Option<Sym>) -> Self {
        let Some(name) = store.cgroup(owner) else {
            return Self::default();
        };
        Self {
            cgroup: Some(name.path.to_string()),
            unit: name.unit.as_deref().map(str::to_owned),
            container: name.container.as_deref().map(str::to_owned),
        }
    }
}
