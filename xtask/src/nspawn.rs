//! The package under a real systemd: a minimal Debian tree (debootstrap, kept in
//! `target/nspawn-root` for later runs) with the package installed and its unit enabled,
//! booted with `systemd-nspawn -b`. A oneshot unit ordered after netspy.service records what
//! systemd says of it (active, its STATUS= line), the daemon's /health and /metrics, then
//! powers the container off. PID 1 of these machines is not systemd, so this is the only
//! place the unit's `Type=notify` handshake meets systemd itself.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, bail};

use crate::{apt_install_missing, run, workspace_root};

/// Written into the tree: runs once netspy.service is up (or failed), then powers off.
const CHECK_UNIT: &str = "[Unit]
Description=Record how netspy.service came up, then power off
After=netspy.service
Wants=netspy.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'systemctl show netspy -p ActiveState -p SubState -p StatusText > /root/netspy-show.txt; curl -s localhost:8080/health > /root/netspy-health.txt; curl -s localhost:8080/metrics > /root/netspy-metrics.txt; journalctl -u netspy --no-pager > /root/netspy-journal.txt 2>&1'
ExecStopPost=/bin/systemctl poweroff --no-block

[Install]
WantedBy=multi-user.target
";

const RESULTS: [&str; 4] = [
    "netspy-show.txt",
    "netspy-health.txt",
    "netspy-metrics.txt",
    "netspy-journal.txt",
];

/// Longest a boot may take, from start to power-off (netspy's own start timeout is 90 s).
const BOOT_SECONDS: &str = "240";

/// `systemd-nspawn` on `root`, within `timeout` (which ends a container that never powers
/// off: SIGTERM makes nspawn shut it down).
fn nspawn(root: &Path) -> Command {
    let mut cmd = Command::new("timeout");
    // No systemd on the host to register with or to keep the container in a unit of.
    cmd.args(["--kill-after=10", BOOT_SECONDS, "systemd-nspawn"])
        .args(["--quiet", "--register=no", "--keep-unit", "-D"])
        .arg(root);
    cmd
}

/// Boots `deb` installed in a minimal Debian under systemd-nspawn and checks that systemd
/// saw netspy.service start (READY=1), with its STATUS= line, and that the API answered.
pub fn boot_check(deb: &Path) -> anyhow::Result<()> {
    apt_install_missing(&[
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
    ])?;
    let root = workspace_root().join("target/nspawn-root");
    // A second try: a mirror that drops one download must not fail the whole suite.
    for attempt in 1..=2 {
        if root.join("usr/bin/curl").exists() {
            break;
        }
        let _ = fs::remove_dir_all(&root);
        let made = run(Command::new("debootstrap")
            .args([
                "--variant=minbase",
                "--include=systemd,systemd-sysv,dbus,curl",
                "bookworm",
            ])
            .arg(&root)
            .arg("http://deb.debian.org/debian"))
        .context("making a minimal Debian tree (debootstrap, from Debian's mirror)");
        if attempt == 2 {
            made?;
        }
    }
    // Not /tmp: the container gets a fresh tmpfs there.
    fs::copy(deb, root.join("root/netspy.deb"))?;
    run(nspawn(&root).args(["dpkg", "-i", "/root/netspy.deb"]))?;
    fs::write(
        root.join("etc/systemd/system/netspy-check.service"),
        CHECK_UNIT,
    )?;
    run(nspawn(&root).args([
        "systemctl",
        "enable",
        "netspy.service",
        "netspy-check.service",
    ]))?;
    for name in RESULTS {
        let _ = fs::remove_file(root.join("root").join(name));
    }
    // CAP_BPF and friends, the two system calls nspawn's filter leaves out, and tracefs.
    run(nspawn(&root)
        .args([
            "-b",
            "--capability=all",
            "--system-call-filter=bpf perf_event_open",
            "--bind=/sys/kernel/tracing",
        ])
        .stdout(std::process::Stdio::null()))
    .context("booting the tree under systemd-nspawn")?;
    let read = |name: &str| fs::read_to_string(root.join("root").join(name)).unwrap_or_default();
    let (show, health, metrics) = (
        read("netspy-show.txt"),
        read("netspy-health.txt"),
        read("netspy-metrics.txt"),
    );
    let journal = read("netspy-journal.txt");
    if !show.contains("ActiveState=active")
        || !show.contains("SubState=running")
        || !show.contains("StatusText=collecting: connect (")
    {
        bail!("systemd did not see netspy.service start:\n{show}\n{journal}");
    }
    if !health.contains(r#""status":"healthy""#) || !metrics.contains("netspy_ready 1") {
        bail!("the service's API did not answer as ready:\n{health}\n{journal}");
    }
    eprintln!(
        "xtask: under systemd-nspawn, systemd started netspy.service: {}",
        show.lines()
            .find(|l| l.starts_with("StatusText="))
            .unwrap_or_default()
    );
    Ok(())
}
