//! Names of cgroups: an event's cgroup id (the inode number of its cgroup v2 directory) to
//! the cgroup's path, the systemd unit it is (`nginx.service`, `session-3.scope`) and the
//! container it runs (docker, containerd, cri-o and podman name their cgroups after the
//! container id).
//!
//! The id is turned into a path by the kernel itself: `open_by_handle_at` on the cgroup2
//! mount with the id as a kernfs file handle, then the opened directory's name. One system
//! call, no walk of the tree; a cgroup removed before it is asked for answers ESTALE and is
//! reported by its id only, never guessed.

use crate::store::Resolve;
use std::{
    ffi::c_int,
    fs::File,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    path::PathBuf,
    sync::Arc,
};

/// What a cgroup is called.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CgroupName {
    /// Path from the cgroup2 root: `/system.slice/nginx.service`.
    pub path: Arc<str>,
    /// The innermost systemd unit on the path (a service or scope rather than the slice
    /// holding it), if any.
    pub unit: Option<Arc<str>>,
    /// The container id (64 hex digits) of a container's cgroup, if it is one.
    pub container: Option<Arc<str>>,
}

impl CgroupName {
    /// The names of the cgroup at `path` (relative to the cgroup2 root, starting with `/`).
    pub fn of_path(path: &str) -> Self {
        Self {
            path: Arc::from(path),
            unit: unit_of(path).map(Arc::from),
            container: container_of(path).map(Arc::from),
        }
    }
}

/// systemd's unit types that can hold processes, and the slice that groups them.
const UNIT_SUFFIXES: [&str; 5] = [".service", ".scope", ".socket", ".mount", ".swap"];

/// The innermost unit on `path`: `/user.slice/user-1000.slice/user@1000.service/app.slice/
/// app-foo.scope` is `app-foo.scope`; a path of slices only is its innermost slice;
/// components below a unit (a service's own sub-cgroups) are skipped.
pub fn unit_of(path: &str) -> Option<&str> {
    let components = || path.split('/').rev().filter(|c| !c.is_empty());
    components()
        .find(|c| UNIT_SUFFIXES.iter().any(|s| unit_named(c, s)))
        .or_else(|| components().find(|c| unit_named(c, ".slice")))
}

fn unit_named(component: &str, suffix: &str) -> bool {
    component.len() > suffix.len() && component.ends_with(suffix)
}

/// Prefixes of container scopes: `docker-<id>.scope` (docker with systemd),
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope` (podman).
const CONTAINER_PREFIXES: [&str; 5] = ["docker-", "cri-containerd-", "crio-", "libpod-", ""];

/// The container id on `path`: a component that is a 64-hex-digit id, bare (cgroupfs
/// drivers: `/docker/<id>`, `/kubepods/burstable/pod<uid>/<id>`) or in a runtime's scope
/// name. The innermost wins; a runtime's monitor (`crio-conmon-<id>.scope`) is not one.
pub fn container_of(path: &str) -> Option<&str> {
    path.split('/').rev().find_map(|component| {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        CONTAINER_PREFIXES
            .iter()
            .filter_map(|prefix| name.strip_prefix(prefix))
            .find(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// The cgroup2 hierarchy of this system, opened: `/sys/fs/cgroup` on unified hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones.
pub struct CgroupFs {
    mount: File,
    mount_path: PathBuf,
}

/// `FILEID_KERNFS`: a kernfs node's 64-bit id as a file handle (`include/linux/exportfs.h`).
const FILEID_KERNFS: c_int = 0xfe;

impl CgroupFs {
    /// Opens the cgroup2 mount named in `/proc/self/mountinfo`, or says why not.
    pub fn open() -> Result<Self, String> {
        let mount_path = cgroup2_root()?;
        let mount = File::open(&mount_path).map_err(|e| format!("opening {mount_path}: {e}"))?;
        Ok(Self {
            mount,
            mount_path: PathBuf::from(mount_path),
        })
    }

    /// The directory of cgroup `id`, opened by its handle.
    fn open_id(&self, id: u64) -> std::io::Result<OwnedFd> {
        #[repr(C)]
        struct KernfsHandle {
            handle_bytes: u32,
            handle_type: c_int,
            id: u64,
        }
        let mut handle = KernfsHandle {
            handle_bytes: 8,
            handle_type: FILEID_KERNFS,
            id,
        };
        // SAFETY: `handle` is a file_handle header followed by its 8 bytes of handle, as
        // handle_bytes says; the kernel only reads it. The mount fd is open for the call.
        let fd = unsafe {
            libc::open_by_handle_at(
                self.mount.as_raw_fd(),
                (&raw mut handle).cast::<libc::file_handle>(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor, owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl CgroupFs {
    /// The cgroup with this id, named by its path; None when it is gone.
    pub fn name(&self, id: u64) -> Option<CgroupName> {
        let fd = self.open_id(id).ok()?;
        let full = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        let relative = full.strip_prefix(&self.mount_path).ok()?;
        let path = format!("/{}", relative.to_str()?);
        Some(CgroupName::of_path(&path))
    }
}

impl Resolve<u64, CgroupName> for CgroupFs {
    fn resolve(&self, id: u64) -> Option<CgroupName> {
        self.name(id)
    }
}

/// Where the cgroup2 file system is mounted here, from `/proc/self/mountinfo`.
pub fn cgroup2_root() -> Result<String, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    cgroup2_mount(&mountinfo)
        .map(str::to_owned)
        .ok_or_else(|| "no cgroup2 file system is mounted".to_owned())
}

/// The mount point of the cgroup2 file system's root in a mountinfo text (fields: id,
/// parent, major:minor, root, mount point, options, optional fields, `-`, type, ...): a
/// bind mount of a subtree would name every path wrong.
fn cgroup2_mount(mountinfo: &str) -> Option<&str> {
    mountinfo.lines().find_map(|line| {
        let (mount, after) = line.split_once(" - ")?;
        let mut fields = mount.split_whitespace();
        (after.split_whitespace().next()? == "cgroup2" && fields.nth(3)? == "/")
            .then(|| fields.next())
            .flatten()
            // Mount points with spaces are octal-escaped; the cgroup2 mount never has one.
            .filter(|m| !m.contains('\\'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2c1e8b9a7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b";

    #[test]
    fn units_are_the_innermost_service_or_scope() {
        for (path, unit) in [
            ("/system.slice/nginx.service", Some("nginx.service")),
            ("/system.slice/nginx.service/worker", Some("nginx.service")),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.scope",
                Some("app-foo.scope"),
            ),
            (
                "/user.slice/user-1000.slice/session-3.scope",
                Some("session-3.scope"),
            ),
            ("/system.slice", Some("system.slice")),
            ("/init.scope", Some("init.scope")),
            ("/", None),
            ("/my-group/x", None),
            ("/.service", None),
        ] {
            assert_eq!(unit_of(path), unit, "{path}");
        }
    }

    #[test]
    fn containers_are_found_by_their_id_whatever_the_runtime() {
        for path in [
            format!("/system.slice/docker-{ID}.scope"),
            format!("/docker/{ID}"),
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope"
            ),
            format!("/kubepods/burstable/pod1/{ID}"),
            format!("/machine.slice/libpod-{ID}.scope/container"),
            format!("/system.slice/crio-{ID}.scope"),
        ] {
            assert_eq!(container_of(&path), Some(ID), "{path}");
        }
        for path in [
            format!("/system.slice/crio-conmon-{ID}.scope"),
            "/system.slice/nginx.service".to_owned(),
            format!("/docker/{}", &ID[1..]),
            "/".to_owned(),
        ] {
            assert_eq!(container_of(&path), None, "{path}");
        }
        let name = CgroupName::of_path(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(name.unit.as_deref(), Some(&*format!("docker-{ID}.scope")));
    }

    #[test]
    fn the_cgroup2_mount_is_found_on_unified_and_hybrid_hosts() {
        let hybrid = "25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(hybrid), Some("/sys/fs/cgroup/unified"));
        let unified = "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(unified), Some("/sys/fs/cgroup"));
        let bound = "30 23 0:26 /system.slice /srv/cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(&format!("{bound}{unified}")),
            Some("/sys/fs/cgroup")
        );
        assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }
}
