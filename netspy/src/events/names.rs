//! Names of kernel numbers that are stable ABI (socket types, IP protocols, errno).

/// `SOCK_*` name of a socket type (`sk->sk_type`).
pub fn socket_type_name(sock_type: u16) -> Option<&'static str> {
    use netspy_common::sock_type::{DCCP, DGRAM, PACKET, RAW, RDM, SEQPACKET, STREAM};
    Some(match sock_type {
        STREAM => "SOCK_STREAM",
        DGRAM => "SOCK_DGRAM",
        RAW => "SOCK_RAW",
        RDM => "SOCK_RDM",
        SEQPACKET => "SOCK_SEQPACKET",
        DCCP => "SOCK_DCCP",
        PACKET => "SOCK_PACKET",
        _ => return None,
    })
}

/// Name of an IP protocol number (`sk->sk_protocol` or the IP header's protocol).
pub fn protocol_name(protocol: u16) -> Option<&'static str> {
    use netspy_common::proto::{
        IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_MPTCP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
        IPPROTO_UDPLITE,
    };
    Some(match protocol {
        IPPROTO_ICMP => "ICMP",
        IPPROTO_TCP => "TCP",
        IPPROTO_UDP => "UDP",
        IPPROTO_ICMPV6 => "ICMPv6",
        IPPROTO_SCTP => "SCTP",
        IPPROTO_UDPLITE => "UDPLite",
        IPPROTO_MPTCP => "MPTCP",
        _ => return None,
    })
}

/// Name of a TCP state (`tcp_states.h`, without `TCP_`).
pub fn tcp_state_name(tcp_state: u8) -> Option<&'static str> {
    use netspy_common::tcp::state::{
        CLOSE, CLOSE_WAIT, CLOSING, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, LAST_ACK, LISTEN,
        NEW_SYN_RECV, SYN_RECV, SYN_SENT, TIME_WAIT,
    };
    Some(match u32::from(tcp_state) {
        ESTABLISHED => "ESTABLISHED",
        SYN_SENT => "SYN_SENT",
        SYN_RECV => "SYN_RECV",
        FIN_WAIT1 => "FIN_WAIT1",
        FIN_WAIT2 => "FIN_WAIT2",
        TIME_WAIT => "TIME_WAIT",
        CLOSE => "CLOSE",
        CLOSE_WAIT => "CLOSE_WAIT",
        LAST_ACK => "LAST_ACK",
        LISTEN => "LISTEN",
        CLOSING => "CLOSING",
        NEW_SYN_RECV => "NEW_SYN_RECV",
        _ => return None,
    })
}

/// Symbolic name of an errno value (`ECONNREFUSED`), from the C library's table.
pub fn errno_name(errno: i32) -> Option<String> {
    match nix::errno::Errno::from_raw(errno) {
        nix::errno::Errno::UnknownErrno => None,
        e => Some(format!("{e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_values_and_refuses_unknown_ones() {
        assert_eq!(socket_type_name(1), Some("SOCK_STREAM"));
        assert_eq!(socket_type_name(2), Some("SOCK_DGRAM"));
        assert_eq!(socket_type_name(99), None);
        assert_eq!(protocol_name(6), Some("TCP"));
        assert_eq!(protocol_name(17), Some("UDP"));
        assert_eq!(protocol_name(250), None);
        assert_eq!(errno_name(111).as_deref(), Some("ECONNREFUSED"));
        assert_eq!(errno_name(115).as_deref(), Some("EINPROGRESS"));
        assert_eq!(errno_name(110).as_deref(), Some("ETIMEDOUT"));
        assert_eq!(errno_name(100_000), None);
        assert_eq!(tcp_state_name(2), Some("SYN_SENT"));
        assert_eq!(tcp_state_name(12), Some("NEW_SYN_RECV"));
        assert_eq!(tcp_state_name(13), None);
    }
}
