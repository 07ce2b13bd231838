//! netspy as a systemd service: the unit in `packaging/` passes systemd's own checks
//! (`systemd-analyze verify` and `security`, Debian's systemd, installed by the test set-up
//! when missing), and the real daemon speaks the readiness protocol of `Type=notify` to a
//! `NOTIFY_SOCKET` this test listens on, as systemd would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::daemon::{DaemonProcess, client};

const UNIT: &str = include_str!("../../packaging/netspy.service");

/// The highest exposure score (0 safe .. 10 exposed) the unit may have; `systemd-analyze
/// security` gave 2.3 when it was written (README "As a systemd service").
const MAX_EXPOSURE: f64 = 3.0;

/// A directory of this test's own, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netspy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The unit as packaged, in `dir`, with `ExecStart=` pointing at the binary under test
/// (`verify` checks that the command exists; everything else is verbatim).
fn unit_in(dir: &Path) -> PathBuf {
    assert!(UNIT.contains("ExecStart=/usr/bin/netspy daemon "), "{UNIT}");
    let path = dir.join("netspy.service");
    let unit = UNIT.replace("/usr/bin/netspy", env!("CARGO_BIN_EXE_netspy"));
    std::fs::write(&path, unit).unwrap();
    path
}

fn systemd_analyze(args: &[&str], unit: &Path) -> (bool, String) {
    let output = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .expect("systemd-analyze (cargo xtask test installs systemd)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn the_unit_passes_systemd_analyze_verify_without_a_warning() {
    let dir = scratch("verify");
    // --man=no: the man page is the package's; the unit alone is checked here.
    let (ok, text) = systemd_analyze(&["verify", "--man=no"], &unit_in(&dir));
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "", "warnings from verify");
}

#[test]
fn the_units_exposure_score_stays_low() {
    let dir = scratch("security");
    let (_, text) = systemd_analyze(&["security", "--offline=true"], &unit_in(&dir));
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for netspy.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in {text}"));
    assert!(score <= MAX_EXPOSURE, "exposure {score}: {text}");
    for kept in [
        "CAP_SYS_ADMIN",
        "CAP_NET_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_(DAC_",
    ] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(kept)).collect();
        assert!(
            // ✓ in a UTF-8 locale, + in others.
            !lines.is_empty() && lines.iter().all(|l| l.trim_start().starts_with(['✓', '+'])),
            "{kept} is not dropped: {lines:?}"
        );
    }
}

/// The notify messages that arrive on `socket` until one contains `wanted` (each message is
/// newline-separated `KEY=value` lines).
fn messages_until(socket: &UnixDatagram, wanted: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buffer = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "no {wanted} in {seen:?}");
        let Ok(length) = socket.recv(&mut buffer) else {
            continue;
        };
        let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
        seen.push(message.clone());
        if message.lines().any(|l| l == wanted) {
            return message;
        }
    }
}

#[test]
fn the_daemon_notifies_ready_with_its_probes_and_address_then_stopping() {
    let dir = scratch("notify");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut daemon =
        DaemonProcess::start_with_env(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut seen = Vec::new();
    let ready = messages_until(&socket, "READY=1", &mut seen);
    let api = format!("API on http://{}", daemon.address);
    assert!(
        seen[0].starts_with("STATUS=loading the probes; ") && seen[0].contains(&api),
        "{seen:?}"
    );
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_else(|| panic!("no STATUS with READY: {ready}"));
    assert!(status.starts_with("collecting: connect ("), "{status}");
    for probe in ["tcp_outcome (", "packet_drop (", "socket_owners ("] {
        assert!(status.contains(probe), "{probe} missing: {status}");
    }
    assert!(status.ends_with(&api), "{status}");
    // Ready means ready: the API answers data questions at once.
    let answer = client()
        .get(format!("{}/api/connection-summary", daemon.url()))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let stopping = messages_until(&socket, "STOPPING=1", &mut seen);
    assert!(stopping.contains("STATUS=stopping"), "{stopping}");
    let status = daemon.exit_within(Duration::from_secs(15)).expect("exit");
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
