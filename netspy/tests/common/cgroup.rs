//! Cgroups of a test, named like systemd units or container scopes.

use std::{path::PathBuf, process::Command};

/// A cgroup of this test under the cgroup2 root (`/netspy-test-PID.slice/NAME`), removed
/// when dropped (its processes have exited by then).
pub struct TestCgroup {
    slice: PathBuf,
    dir: PathBuf,
}

impl TestCgroup {
    /// Creates `/netspy-test-PID.slice/NAME` under the cgroup2 root.
    pub fn new(name: &str) -> Self {
        let root = netspy::cgroups::cgroup2_root().unwrap();
        let slice = PathBuf::from(root).join(format!("netspy-test-{}.slice", std::process::id()));
        let dir = slice.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        Self { slice, dir }
    }

    /// The path netspy reports for it.
    pub fn path(&self) -> String {
        let root = netspy::cgroups::cgroup2_root().unwrap();
        format!("/{}", self.dir.strip_prefix(root).unwrap().display())
    }

    /// Runs python3 with `script` in this cgroup (it moves itself in first); its pid.
    pub fn python(&self, script: &str) -> u32 {
        let out = Command::new("python3")
            .args(["-c", &format!("import os, socket\nopen({:?} + '/cgroup.procs', 'w').write(str(os.getpid()))\n{script}\nprint(os.getpid())", self.dir.display().to_string())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_dir(&self.slice);
    }
}
