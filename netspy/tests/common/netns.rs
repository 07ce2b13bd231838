//! A network namespace of the test's own: a veth pair with 10.x addresses inside it only,
//! and nft rules in the namespace that drop UDP to [`DROPPED_UDP_PORT`] and TCP to
//! [`DROPPED_TCP_PORT`]. Removed on drop.

use std::sync::atomic::{AtomicU32, Ordering};

use super::sh;

/// UDP port the namespace's nft rule drops.
pub const DROPPED_UDP_PORT: u16 = 9999;
/// TCP port the namespace's nft rule drops (connects to it time out).
pub const DROPPED_TCP_PORT: u16 = 8888;

/// The namespace and its addresses.
pub struct Netns {
    name: String,
    host_if: String,
    /// Host side of the veth.
    pub host_ip: String,
    /// Namespace side of the veth.
    pub peer_ip: String,
}

impl Netns {
    /// Creates it; panics with the failing command's output if that fails.
    pub fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // Distinct per process and per call: tests in one binary run in parallel.
        let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let (a, b) = (pid % 250 + 1, n % 250 + 1);
        let ns = Self {
            name: format!("netspy-test-{pid}-{n}"),
            host_if: format!("nsp{pid}-{n}h"),
            host_ip: format!("10.{a}.{b}.1"),
            peer_ip: format!("10.{a}.{b}.2"),
        };
        ns.remove();
        let peer_if = format!("nsp{pid}-{n}n");
        let script = format!(
            "set -e
            ip netns add {name}
            ip link add {host_if} type veth peer name {peer_if}
            ip link set {peer_if} netns {name}
            ip addr add {host_ip}/30 dev {host_if}
            ip link set {host_if} up
            ip -n {name} addr add {peer_ip}/30 dev {peer_if}
            ip -n {name} link set {peer_if} up
            ip -n {name} link set lo up
            ip netns exec {name} nft -f - <<'NFT'
table inet netspy_test {{
  chain input {{
    type filter hook input priority 0; policy accept;
    udp dport {DROPPED_UDP_PORT} counter drop
    tcp dport {DROPPED_TCP_PORT} counter drop
  }}
}}
NFT",
            name = ns.name,
            host_if = ns.host_if,
            host_ip = ns.host_ip,
            peer_ip = ns.peer_ip,
        );
        assert!(
            sh(&script),
            "creating the test network namespace failed (needs ip and nft)"
        );
        ns
    }

    /// Packets the namespace's nft rule dropped to UDP port [`DROPPED_UDP_PORT`] (its own
    /// count, to check netspy's against).
    pub fn udp_dropped_by_nft(&self) -> u64 {
        let output = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "list", "chain", "inet"])
            .args(["netspy_test", "input"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find(|l| l.contains(&format!("udp dport {DROPPED_UDP_PORT}")))
            .and_then(|l| l.split("packets ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no UDP drop counter in nft's answer: {text}"))
    }

    /// A TCP listener on the namespace's side of the veth, port `port`: made by a thread
    /// that enters the namespace (a socket stays in the namespace it was made in).
    pub fn listen_inside(&self, port: u16) -> std::net::TcpListener {
        let (path, addr) = (format!("/run/netns/{}", self.name), self.peer_ip.clone());
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let entered = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "{}", std::io::Error::last_os_error());
            std::net::TcpListener::bind((addr.as_str(), port)).unwrap()
        })
        .join()
        .unwrap()
    }

    /// A TCP connection from inside the namespace to `to`: made by a thread that enters it.
    pub fn connect_inside(&self, to: std::net::SocketAddr) -> std::net::TcpStream {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let entered = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "{}", std::io::Error::last_os_error());
            std::net::TcpStream::connect(to).unwrap()
        })
        .join()
        .unwrap()
    }

    /// What a command run inside the namespace printed on stdout; panics if it failed.
    pub fn output_inside(&self, args: &[&str]) -> String {
        let output = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?} in {}: {output:?}",
            self.name
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs a shell command inside the namespace; true when it succeeded.
    pub fn exec(&self, cmd: &str) -> bool {
        sh(&format!("ip netns exec {} {cmd}", self.name))
    }

    fn remove(&self) {
        sh(&format!(
            "ip netns del {} 2>/dev/null; ip link del {} 2>/dev/null; true",
            self.name, self.host_if
        ));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}
