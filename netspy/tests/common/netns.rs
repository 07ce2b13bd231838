//! A network namespace of the test's own: a veth pair with 10.x addresses inside it only,
//! and an nft rule in the namespace that drops UDP to [`DROPPED_UDP_PORT`]. Removed on drop.

use super::sh;

/// UDP port the namespace's nft rule drops.
pub const DROPPED_UDP_PORT: u16 = 9999;

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
        let id = std::process::id();
        // Distinct per process, so parallel test binaries never collide.
        let (a, b) = ((id >> 8) % 250 + 1, id % 250 + 1);
        let ns = Self {
            name: format!("netspy-test-{id}"),
            host_if: format!("nsp{id}h"),
            host_ip: format!("10.{a}.{b}.1"),
            peer_ip: format!("10.{a}.{b}.2"),
        };
        ns.remove();
        let peer_if = format!("nsp{id}n");
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
    udp dport {DROPPED_UDP_PORT} drop
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
