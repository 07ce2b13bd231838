//! Real probes, real traffic: each test loads the programs, makes its own connects and drops,
//! and checks the exact fields of the events that belong to it (matched by thread id, ports
//! or paths, since tests run in parallel in one process).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    io::ErrorKind,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::{linux::net::SocketAddrExt, unix::net::UnixListener},
    time::Duration,
};

use common::{Kernel, closed_tcp_port, closed_udp_port, my_cgroup_id, my_tid};
use netspy::{
    events::{ConnectionEvent, Destination, Event, PacketDrop, TcpOutcome, TcpResult},
    probes::ProbeOptions,
};
use socket2::{Domain, Socket, Type};

fn my_connect(dest: Destination) -> impl Fn(&Event) -> Option<ConnectionEvent> {
    let tid = my_tid();
    move |e| match e {
        Event::Connection(c) if c.process.tid == tid && c.destination == dest => Some(c.clone()),
        _ => None,
    }
}

fn outcome_to(dest: SocketAddr) -> impl Fn(&Event) -> Option<TcpOutcome> {
    move |e| match e {
        Event::TcpOutcome(o) if o.destination == dest => Some(o.clone()),
        _ => None,
    }
}

fn drop_to(port: u16, reason: &'static str) -> impl Fn(&Event) -> Option<PacketDrop> {
    move |e| match e {
        Event::PacketDrop(d) if d.destination_port == Some(port) && &*d.drop_reason == reason => {
            Some(d.clone())
        }
        _ => None,
    }
}

fn ip(addr: SocketAddr) -> Destination {
    Destination::Ip {
        ip: addr.ip(),
        port: addr.port(),
    }
}

#[test]
fn tcp_connect_to_listener_is_established_with_latency() {
    let mut kernel = Kernel::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dest = listener.local_addr().unwrap();
    let stream = TcpStream::connect(dest).unwrap();
    let src = stream.local_addr().unwrap();

    let conn = kernel.wait_for("connect event", my_connect(ip(dest)));
    assert_eq!(conn.return_code, 0);
    assert_eq!(conn.error, None);
    assert_eq!(conn.protocol, "TCP");
    assert_eq!(conn.socket_type.as_deref(), Some("SOCK_STREAM"));
    assert_eq!(conn.address_family, 2);
    assert_eq!(conn.process.pid, std::process::id());
    assert_eq!(conn.process.uid, nix::unistd::getuid().as_raw());
    assert_eq!(conn.process.cgroup_id, my_cgroup_id());
    assert_eq!(&*conn.process.command, thread_comm().as_str());
    assert_eq!(conn.fd as i32, std::os::fd::AsRawFd::as_raw_fd(&stream));
    assert_ne!(conn.sock, 0);
    assert_eq!(
        conn.source,
        Some(src),
        "the local address connect gave the socket"
    );

    let outcome = kernel.wait_for("established outcome", outcome_to(dest));
    assert_eq!(outcome.result, TcpResult::Established);
    assert_eq!(outcome.source, src);
    assert_eq!(outcome.error, None);
    assert!(
        outcome.latency_ns.is_some_and(|ns| ns > 0),
        "latency {:?}",
        outcome.latency_ns
    );
    assert_eq!(
        outcome.process.as_ref().map(|p| (p.pid, p.tid)),
        Some((std::process::id(), my_tid()))
    );
    assert_eq!(
        outcome.sock, conn.sock,
        "outcome and connect name the same socket"
    );
}

#[test]
fn connect_to_closed_port_is_refused_with_a_no_socket_drop() {
    let mut kernel = Kernel::start();
    let dest = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_tcp_port()));
    let err = TcpStream::connect(dest).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

    let conn = kernel.wait_for("refused connect", my_connect(ip(dest)));
    assert_eq!(conn.return_code, -111);
    assert_eq!(conn.error.as_deref(), Some("ECONNREFUSED"));
    assert_eq!(conn.protocol, "TCP");

    let outcome = kernel.wait_for("refused outcome", outcome_to(dest));
    assert_eq!(outcome.result, TcpResult::Refused);
    assert_eq!(outcome.error.as_deref(), Some("ECONNREFUSED"));
    assert_eq!(
        outcome.process.as_ref().map(|p| p.pid),
        Some(std::process::id())
    );

    let drop = kernel.wait_for("NO_SOCKET drop", drop_to(dest.port(), "NO_SOCKET"));
    assert_eq!(drop.protocol.as_deref(), Some("TCP"));
    assert_eq!(drop.ethertype, 0x0800);
    assert_eq!(drop.source_ip, Some(outcome.source.ip()));
    assert_eq!(drop.source_port, Some(outcome.source.port()));
    assert_eq!(drop.destination_ip, Some(dest.ip()));
    assert!(
        drop.location.starts_with("tcp_v4_rcv+"),
        "location {}",
        drop.location
    );
    // The SYN was orphaned on loopback: either its owner is known, or it says unattributed.
    assert!(
        drop.process
            .as_ref()
            .is_none_or(|p| p.pid == std::process::id())
    );
}

#[test]
fn nonblocking_connect_gets_its_result_from_the_tcp_state() {
    let mut kernel = Kernel::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dest = listener.local_addr().unwrap();
    let refused = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_tcp_port()));
    for target in [dest, refused] {
        let socket = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None).unwrap();
        let err = socket.connect(&target.into()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::EINPROGRESS));
        std::thread::sleep(Duration::from_millis(50));
        let conn = kernel.wait_for("EINPROGRESS connect", my_connect(ip(target)));
        assert_eq!(conn.return_code, -115);
        assert_eq!(conn.error.as_deref(), Some("EINPROGRESS"));
        let outcome = kernel.wait_for("outcome", outcome_to(target));
        let expected = if target == dest {
            TcpResult::Established
        } else {
            TcpResult::Refused
        };
        assert_eq!(outcome.result, expected, "{target}");
        assert_eq!(outcome.process.as_ref().map(|p| p.tid), Some(my_tid()));
        assert_eq!(outcome.sock, conn.sock);
    }
}

#[test]
fn udp_connect_reports_the_real_socket_type() {
    let mut kernel = Kernel::start();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dest = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_udp_port("127.0.0.1")));
    socket.connect(dest).unwrap();
    // 443 and 53 are "TCP ports" and "UDP ports" to a guesser; the kernel socket decides.
    let conn = kernel.wait_for("UDP connect", my_connect(ip(dest)));
    assert_eq!(conn.return_code, 0);
    assert_eq!(conn.protocol, "UDP");
    assert_eq!(conn.socket_type.as_deref(), Some("SOCK_DGRAM"));
    assert_eq!((conn.raw_protocol, conn.raw_socktype), (17, 2));
    assert_eq!(conn.source, Some(socket.local_addr().unwrap()));

    socket.send(b"nobody home").unwrap();
    let drop = kernel.wait_for("UDP NO_SOCKET drop", drop_to(dest.port(), "NO_SOCKET"));
    assert_eq!(drop.protocol.as_deref(), Some("UDP"));
    assert_eq!(drop.source_port, Some(socket.local_addr().unwrap().port()));
    assert!(
        drop.location.starts_with("__udp4_lib_rcv+"),
        "location {}",
        drop.location
    );
}

#[test]
fn ipv6_connect_to_loopback() {
    let mut kernel = Kernel::start();
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let dest = listener.local_addr().unwrap();
    let stream = TcpStream::connect(dest).unwrap();

    let conn = kernel.wait_for("IPv6 connect", my_connect(ip(dest)));
    assert_eq!(conn.address_family, 10);
    assert_eq!(conn.source, Some(stream.local_addr().unwrap()));
    assert_eq!(conn.protocol, "TCP");
    assert_eq!(
        conn.destination.to_string(),
        format!("[::1]:{}", dest.port())
    );
    let outcome = kernel.wait_for("IPv6 outcome", outcome_to(dest));
    assert_eq!(outcome.result, TcpResult::Established);
    assert_eq!(outcome.source, stream.local_addr().unwrap());
}

#[test]
fn ipv6_drop_ports_are_read_past_extension_headers() {
    let mut kernel = Kernel::start();
    let port = closed_udp_port("::1");
    let socket = UdpSocket::bind("[::1]:0").unwrap();
    // Hop-by-hop then destination options, each 8 bytes holding one PadN option: the UDP
    // header sits 16 bytes past the fixed IPv6 header.
    let options: [u8; 8] = [0, 0, 1, 4, 0, 0, 0, 0];
    for name in [libc::IPV6_HOPOPTS, libc::IPV6_DSTOPTS] {
        set_ipv6_option(&socket, name, &options);
    }
    socket.send_to(b"x", ("::1", port)).unwrap();

    let drop = kernel.wait_for(
        "IPv6 NO_SOCKET drop behind extension headers",
        drop_to(port, "NO_SOCKET"),
    );
    assert_eq!(drop.ethertype, 0x86dd);
    assert_eq!(
        (drop.protocol.as_deref(), drop.raw_protocol),
        (Some("UDP"), 17)
    );
    assert_eq!(drop.source_ip, Some(Ipv6Addr::LOCALHOST.into()));
    assert_eq!(drop.destination_ip, Some(Ipv6Addr::LOCALHOST.into()));
    assert_eq!(drop.source_port, Some(socket.local_addr().unwrap().port()));
    assert!(
        drop.location.starts_with("__udp6_lib_rcv+"),
        "location {}",
        drop.location
    );
}

/// Sets a sticky IPv6 extension-header option (needs CAP_NET_RAW, as the tests run as root).
fn set_ipv6_option(socket: &UdpSocket, name: libc::c_int, value: &[u8]) {
    use std::os::fd::AsRawFd;
    // SAFETY: the pointer and length describe `value`, which outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt {name}: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn unix_connects_report_path_and_abstract_name() {
    let mut kernel = Kernel::start();
    let dir = std::env::temp_dir().join(format!("netspy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("probe.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();

    let name = format!("netspy-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _abstract_listener = UnixListener::bind_addr(&addr).unwrap();
    let _abstract_client = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
    let missing = dir.join("missing.sock");
    assert!(std::os::unix::net::UnixStream::connect(&missing).is_err());

    let conn = kernel.wait_for(
        "UNIX path connect",
        my_connect(Destination::Unix {
            path: path.display().to_string(),
        }),
    );
    assert_eq!(conn.return_code, 0);
    assert_eq!(conn.address_family, 1);
    assert_eq!(conn.protocol, "UNIX");
    assert_eq!(conn.socket_type.as_deref(), Some("SOCK_STREAM"));
    let conn = kernel.wait_for(
        "abstract connect",
        my_connect(Destination::Unix {
            path: format!("@{name}"),
        }),
    );
    assert_eq!(conn.return_code, 0);
    let conn = kernel.wait_for(
        "missing path",
        my_connect(Destination::Unix {
            path: missing.display().to_string(),
        }),
    );
    assert_eq!(conn.error.as_deref(), Some("ENOENT"));

    drop(listener);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn netfilter_drop_in_a_network_namespace_has_reason_and_5_tuple() {
    let netns = common::netns::Netns::create();
    let mut kernel = Kernel::start();
    let socket = UdpSocket::bind((netns.host_ip.as_str(), 0)).unwrap();
    let sport = socket.local_addr().unwrap().port();
    socket
        .send_to(
            b"drop me",
            (netns.peer_ip.as_str(), common::netns::DROPPED_UDP_PORT),
        )
        .unwrap();

    let drop = kernel.wait_for(
        "NETFILTER_DROP",
        drop_to(common::netns::DROPPED_UDP_PORT, "NETFILTER_DROP"),
    );
    assert_eq!(drop.protocol.as_deref(), Some("UDP"));
    assert_eq!(drop.source_ip, Some(netns.host_ip.parse().unwrap()));
    assert_eq!(drop.source_port, Some(sport));
    assert_eq!(drop.destination_ip, Some(netns.peer_ip.parse().unwrap()));
    assert_eq!(drop.ethertype, 0x0800);
    assert!(
        drop.location.starts_with("nft_do_chain+"),
        "location {}",
        drop.location
    );
}

#[test]
fn a_later_fragment_is_reported_without_ports() {
    let netns = common::netns::Netns::create();
    // A lone non-first fragment waits for the rest, then expires after ipfrag_time.
    assert!(netns.exec("sysctl -qw net.ipv4.ipfrag_time=1"));
    let mut kernel = Kernel::start();
    let (src, dst): (Ipv4Addr, Ipv4Addr) = (
        netns.host_ip.parse().unwrap(),
        netns.peer_ip.parse().unwrap(),
    );
    // IPv4 header (UDP, fragment offset 8 bytes, no more fragments; the kernel fills in the
    // checksum and length), then 8 payload bytes that would read as ports 0x1234 -> 0x5678.
    let mut packet = vec![0x45, 0, 0, 28, 0x42, 0x42, 0x00, 0x01, 64, 17, 0, 0];
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
    let raw = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(socket2::Protocol::from(libc::IPPROTO_RAW)),
    )
    .unwrap();
    raw.send_to(&packet, &SocketAddr::from((dst, 0)).into())
        .unwrap();

    let drop = kernel.wait_for("the expired fragment", move |e| match e {
        Event::PacketDrop(d)
            if &*d.drop_reason == "FRAG_REASM_TIMEOUT" && d.destination_ip == Some(dst.into()) =>
        {
            Some(d.clone())
        }
        _ => None,
    });
    assert_eq!(drop.source_ip, Some(src.into()));
    assert_eq!(
        (drop.protocol.as_deref(), drop.raw_protocol),
        (Some("UDP"), 17)
    );
    assert_eq!(
        (drop.source_port, drop.destination_port),
        (None, None),
        "a later fragment has no transport header"
    );
}

#[test]
fn tcp_connect_whose_syn_is_dropped_times_out() {
    let netns = common::netns::Netns::create();
    let mut kernel = Kernel::start();
    let dest: SocketAddr = format!("{}:{}", netns.peer_ip, common::netns::DROPPED_TCP_PORT)
        .parse()
        .unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    // Bounds the SYN retries: the connect fails at the first retransmission (about 1 s).
    socket
        .set_tcp_user_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let err = socket.connect(&dest.into()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::ETIMEDOUT), "{err}");

    let conn = kernel.wait_for("timed-out connect", my_connect(ip(dest)));
    assert_eq!(conn.error.as_deref(), Some("ETIMEDOUT"));
    let outcome = kernel.wait_for("timed-out outcome", outcome_to(dest));
    assert_eq!(outcome.result, TcpResult::TimedOut);
    assert_eq!(outcome.error.as_deref(), Some("ETIMEDOUT"));
    assert!(
        outcome.latency_ns.is_some_and(|ns| ns >= 300_000_000),
        "latency {:?}",
        outcome.latency_ns
    );
    assert_eq!(outcome.process.as_ref().map(|p| p.tid), Some(my_tid()));
    let drop = kernel.wait_for("SYN dropped by nft", drop_to(dest.port(), "NETFILTER_DROP"));
    assert_eq!(drop.protocol.as_deref(), Some("TCP"));
    assert_eq!(drop.source_ip, Some(outcome.source.ip()));
    assert_eq!(drop.source_port, Some(outcome.source.port()));
}

#[test]
fn receive_queue_overflow_is_attributed_through_the_receiving_socket() {
    let mut kernel = Kernel::start();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let receiver = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    receiver
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    receiver.set_recv_buffer_size(1).unwrap(); // the kernel rounds up to its minimum
    // connect() is where netspy learns who owns the socket.
    receiver
        .connect(&sender.local_addr().unwrap().into())
        .unwrap();
    let port = receiver.local_addr().unwrap().as_socket().unwrap().port();
    for _ in 0..64 {
        sender.send_to(&[0u8; 1024], ("127.0.0.1", port)).unwrap();
    }
    let drop = kernel.wait_for("receive buffer drop", drop_to(port, "SOCKET_RCVBUFF"));
    let owner = drop
        .process
        .expect("attributed through rx_sk to the receiving socket's owner");
    assert_eq!((owner.pid, owner.tid), (std::process::id(), my_tid()));
    assert_eq!(drop.protocol.as_deref(), Some("UDP"));
    assert_eq!(drop.source_port, Some(sender.local_addr().unwrap().port()));
}

/// Sends 64 KiB to a receive queue of the kernel's minimum size and returns a resulting drop.
fn overflow(kernel: &mut Kernel, port: u16) -> PacketDrop {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..64 {
        sender.send_to(&[0u8; 1024], ("127.0.0.1", port)).unwrap();
    }
    kernel.wait_for("receive buffer drop", drop_to(port, "SOCKET_RCVBUFF"))
}

#[test]
fn a_socket_that_never_connects_or_binds_is_owned_by_its_creator() {
    let mut kernel = Kernel::start();
    // A UDP client that only uses sendto(): the socket is autobound, and socket() is the only
    // call netspy sees.
    let client = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    client.set_recv_buffer_size(1).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .send_to(b"x", &peer.local_addr().unwrap().into())
        .unwrap();
    let port = client.local_addr().unwrap().as_socket().unwrap().port();
    let owner = overflow(&mut kernel, port)
        .process
        .expect("attributed to the socket's creator");
    assert_eq!((owner.pid, owner.tid), (std::process::id(), my_tid()));
    assert_eq!(&*owner.command, thread_comm());
}

#[test]
fn a_socket_bound_by_another_thread_than_its_creator_is_the_binders() {
    let mut kernel = Kernel::start();
    // Created on one thread, bound (and so served) on this one, as a socket a parent
    // creates and hands over is.
    let receiver = std::thread::Builder::new()
        .name("nsq-creator".into())
        .spawn(|| Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap())
        .unwrap()
        .join()
        .unwrap();
    receiver.set_recv_buffer_size(1).unwrap();
    receiver
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    let port = receiver.local_addr().unwrap().as_socket().unwrap().port();
    let owner = overflow(&mut kernel, port)
        .process
        .expect("attributed to the socket's binder");
    assert_eq!((owner.pid, owner.tid), (std::process::id(), my_tid()));
    assert_eq!(&*owner.command, thread_comm());
}

/// A UDP client that never connects (sendto only, its port bound by the first send) to a
/// closed local port: loopback orphans the datagram, and the drop names its sender, checked
/// to be inside its send on the socket bound to the datagram's source port.
#[test]
fn a_datagram_sent_without_connect_is_its_senders_when_dropped() {
    let mut kernel = Kernel::start();
    for (family, ip) in [(Domain::IPV4, "127.0.0.1"), (Domain::IPV6, "::1")] {
        let port = closed_udp_port(ip);
        let socket = Socket::new(family, Type::DGRAM, None).unwrap();
        let to: SocketAddr = SocketAddr::new(ip.parse().unwrap(), port);
        socket.send_to(b"x", &to.into()).unwrap();
        let source = socket.local_addr().unwrap().as_socket().unwrap().port();
        let drop = kernel.wait_for("the datagram's drop", drop_to(port, "NO_SOCKET"));
        assert_eq!(drop.source_port, Some(source), "{drop:?}");
        let owner = drop.process.expect("attributed to the sender");
        assert_eq!((owner.pid, owner.tid), (std::process::id(), my_tid()));
        assert_eq!(&*owner.command, thread_comm());
    }
}

#[test]
fn events_name_the_thread_and_its_process() {
    let mut kernel = Kernel::start();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dest = peer.local_addr().unwrap();
    std::thread::Builder::new()
        .name("nsq-named-thr".into())
        .spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(dest).unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
    let connect = kernel.wait_for("the thread's connect", |e| match e {
        Event::Connection(c) if c.destination == ip(dest) => Some(c.clone()),
        _ => None,
    });
    let process = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(
        (&*connect.process.command, &*connect.process.process_name),
        ("nsq-named-thr", process.trim_end())
    );
}

#[test]
fn a_udp_socket_is_owned_by_the_thread_that_connected_it_last() {
    let mut kernel = Kernel::start();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let connect_on = |name: &str, socket: Socket| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                socket.connect(&peer_addr.into()).unwrap();
                (socket, my_tid())
            })
            .unwrap()
            .join()
            .unwrap()
    };
    let receiver = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    receiver.set_recv_buffer_size(1).unwrap();
    receiver
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    let port = receiver.local_addr().unwrap().as_socket().unwrap().port();
    // Each connect on another thread changes the owner (a connected socket only takes its
    // peer's datagrams, so the peer fills the queue); the second change undoes what the
    // connect path's cache of the last owner written holds.
    let mut socket = receiver;
    let mut since = 0;
    for name in ["nsq-conn-one", "nsq-conn-two"] {
        let (connected, tid) = connect_on(name, socket);
        socket = connected;
        // The queue stays full: every datagram of this round is a drop, after the connect.
        for _ in 0..64 {
            peer.send_to(&[0u8; 1024], ("127.0.0.1", port)).unwrap();
        }
        let drop = kernel.wait_for("receive buffer drop", |e| {
            drop_to(port, "SOCKET_RCVBUFF")(e).filter(|d| d.timestamp_ns > since)
        });
        let owner = drop.process.expect("attributed to the connecting thread");
        assert_eq!((owner.tid, &*owner.command), (tid, name));
        // The next round counts only drops after every drop of this one.
        since = kernel
            .collect_for(Duration::from_millis(300), drop_to(port, "SOCKET_RCVBUFF"))
            .iter()
            .map(|d| d.timestamp_ns)
            .max()
            .unwrap_or(since);
    }
    drop(socket);
}

/// A process renamed after its socket's owner was learnt: the next connect by the same thread
/// records the new process name, though the thread and its name are unchanged (the owner
/// cache compares both names).
#[test]
fn a_renamed_process_s_next_connect_carries_its_new_name() {
    let mut kernel = Kernel::start();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let script = r#"
import ctypes, socket, sys, threading
libc = ctypes.CDLL(None)
libc.prctl(15, b"nsq-before", 0, 0, 0)
peer = ("127.0.0.1", int(sys.argv[1]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
s.bind(("127.0.0.1", 0))
first, go = threading.Event(), threading.Event()
def worker():
    libc.prctl(15, b"nsq-conn", 0, 0, 0)
    s.connect(peer)
    first.set()
    go.wait()
    s.connect(peer)
t = threading.Thread(target=worker)
t.start()
first.wait()
libc.prctl(15, b"nsq-after", 0, 0, 0)
go.set()
t.join()
print(s.getsockname()[1], flush=True)
sys.stdin.readline()
"#;
    let mut child = common::KillOnDrop(
        std::process::Command::new("python3")
            .args(["-c", script, &peer.local_addr().unwrap().port().to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    for _ in 0..64 {
        peer.send_to(&[0u8; 1024], ("127.0.0.1", port)).unwrap();
    }
    let drop = kernel.wait_for("receive buffer drop", drop_to(port, "SOCKET_RCVBUFF"));
    let owner = drop.process.expect("attributed to the socket's owner");
    assert_eq!(
        (&*owner.command, &*owner.process_name),
        ("nsq-conn", "nsq-after")
    );
}

#[test]
fn drops_on_an_accepted_socket_are_the_acceptors() {
    let mut kernel = Kernel::start();
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.set_recv_buffer_size(2048).unwrap(); // inherited by the accepted socket
    listener
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    listener.listen(1).unwrap();
    let server = listener.local_addr().unwrap().as_socket().unwrap();
    let client = TcpStream::connect(server).unwrap();
    // Accepted on another thread: only the accept hook can name that thread as the owner.
    let (_accepted, acceptor) = std::thread::Builder::new()
        .name("nsq-acceptor".into())
        .spawn(move || (listener.accept().unwrap().0, my_tid()))
        .unwrap()
        .join()
        .unwrap();
    // Fill the window the acceptor never reads: the client's zero-window probes carry an
    // old sequence number, and the accepted socket drops them.
    client.set_nonblocking(true).unwrap();
    let chunk = [0u8; 65536];
    let filled = std::time::Instant::now();
    while filled.elapsed() < Duration::from_millis(500) {
        if matches!(std::io::Write::write(&mut &client, &chunk), Err(e) if e.kind() == ErrorKind::WouldBlock)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let drop = kernel.wait_for(
        "a drop on the accepted socket, owned by the acceptor",
        |e| match e {
            Event::PacketDrop(d)
                if d.destination_port == Some(server.port())
                    && d.process.as_ref().is_some_and(|p| p.tid == acceptor) =>
            {
                Some(d.clone())
            }
            _ => None,
        },
    );
    let owner = drop.process.unwrap();
    assert_eq!(owner.pid, std::process::id());
    assert_eq!(&*owner.command, "nsq-acceptor");
    assert_eq!(drop.protocol.as_deref(), Some("TCP"));
    assert_eq!(drop.source_port, Some(client.local_addr().unwrap().port()));
}

#[test]
fn a_reused_socket_address_does_not_inherit_the_old_owner() {
    // With socket() watched, a new socket's entry is rewritten at creation; the inode check
    // guards what that hook does not see (kernel sockets, or the hook refused), as here.
    let mut kernel = Kernel::start_with(ProbeOptions {
        disabled_hooks: vec!["tracepoint:syscalls/sys_exit_socket".into()],
        ..Default::default()
    });
    // Freed sockets are handed out again first on the CPU that freed them.
    pin_this_thread_to_its_cpu();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _round in 0..20 {
        // A UDP socket netspy sees connect (so it learns the owner), then closed: UDP has no
        // close hook, so the owner entry outlives the socket.
        let old = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_udp_port("127.0.0.1")));
        old.connect(target).unwrap();
        let old_sock = kernel
            .wait_for("the old socket's connect", my_connect(ip(target)))
            .sock;
        drop(old);
        std::thread::sleep(Duration::from_millis(50)); // UDP frees after an RCU grace period
        // A new socket that never connects, binds or accepts (sending autobinds it), with the
        // socket() hook off: netspy knows no owner for it.
        let new = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        new.set_recv_buffer_size(1).unwrap();
        new.send_to(b"x", &sender.local_addr().unwrap().into())
            .unwrap();
        let port = new.local_addr().unwrap().as_socket().unwrap().port();
        for _ in 0..64 {
            sender.send_to(&[0u8; 1024], ("127.0.0.1", port)).unwrap();
        }
        let drop = kernel.wait_for("receive buffer drop", drop_to(port, "SOCKET_RCVBUFF"));
        if drop.sock == old_sock {
            assert_eq!(drop.process, None, "blamed on the old socket's owner");
            return;
        }
    }
    panic!("the kernel never reused a freed socket's address in 20 rounds");
}

/// Pins the calling thread to the CPU it runs on now (always one it may use).
fn pin_this_thread_to_its_cpu() {
    // SAFETY: cpu_set_t is plain data; the calls get valid pointers and sizes.
    let rc = unsafe {
        let cpu = usize::try_from(libc::sched_getcpu()).unwrap();
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn drop_probe_falls_back_through_its_chain() {
    // tp_btf:kfree_skb is the first choice (the API tests check it is the one in use).
    let chain = [
        (vec!["tp_btf:kfree_skb"], "tracepoint:skb/kfree_skb"),
        (
            vec!["tp_btf:kfree_skb", "tracepoint:skb/kfree_skb"],
            "raw_tracepoint:kfree_skb",
        ),
    ];
    for (disabled, expected) in chain {
        let mut kernel = Kernel::start_with(ProbeOptions {
            disabled_hooks: disabled.iter().map(|h| h.to_string()).collect(),
            ..Default::default()
        });
        let status = kernel
            .probes()
            .status()
            .iter()
            .find(|s| s.name == "packet_drop")
            .unwrap()
            .clone();
        assert_eq!(status.hook.as_deref(), Some(expected));
        assert_eq!(status.refused.len(), disabled.len());
        assert!(
            status
                .refused
                .iter()
                .all(|r| r.reason == "disabled by configuration")
        );

        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = closed_udp_port("127.0.0.1");
        socket.send_to(b"x", ("127.0.0.1", port)).unwrap();
        let drop = kernel.wait_for(expected, drop_to(port, "NO_SOCKET"));
        assert_eq!(drop.source_port, Some(socket.local_addr().unwrap().port()));
    }
}

#[test]
fn connect_is_one_program_at_exit_and_falls_back_to_enter_and_exit() {
    let connect_status = |kernel: &Kernel| {
        kernel
            .probes()
            .status()
            .iter()
            .find(|s| s.name == "connect")
            .unwrap()
            .clone()
    };
    // Both hooks give the same event: destination, real protocol, source, result, UNIX path.
    let check = |kernel: &mut Kernel| {
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_udp_port("127.0.0.1")));
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(target).unwrap();
        let ev = kernel.wait_for("the UDP connect", my_connect(ip(target)));
        assert_eq!((ev.protocol.as_str(), ev.return_code), ("UDP", 0));
        assert_eq!(ev.source, Some(socket.local_addr().unwrap()));
        let path = format!("/tmp/netspy-test-{}.sock", my_tid());
        let _ = std::os::unix::net::UnixStream::connect(&path);
        let unix = kernel.wait_for("the UNIX connect", |e| match e {
            Event::Connection(c) if c.destination == (Destination::Unix { path: path.clone() }) => {
                Some(c.clone())
            }
            _ => None,
        });
        assert_eq!(unix.error.as_deref(), Some("ENOENT"));
        unix.syscall_ns
    };
    let mut primary = Kernel::start();
    let status = connect_status(&primary);
    assert_eq!(
        status.hook.as_deref(),
        Some("tracepoint:syscalls/sys_exit_connect:connect_exit")
    );
    assert_eq!(
        check(&mut primary),
        None,
        "the exit alone cannot time the call"
    );
    drop(primary);

    let mut fallback = Kernel::start_with(ProbeOptions {
        disabled_hooks: vec!["tracepoint:syscalls/sys_exit_connect:connect_exit".into()],
        ..Default::default()
    });
    let status = connect_status(&fallback);
    assert_eq!(
        status.hook.as_deref(),
        Some("tracepoint:syscalls/sys_enter_connect + tracepoint:syscalls/sys_exit_connect")
    );
    assert_eq!(status.refused[0].reason, "disabled by configuration");
    assert!(
        check(&mut fallback).is_some(),
        "enter + exit times the call"
    );
}

#[test]
fn ignored_process_is_not_reported_but_others_are() {
    let mut kernel = Kernel::start_with(ProbeOptions {
        ignore_tgid: Some(std::process::id()),
        ..Default::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dest = listener.local_addr().unwrap();
    let _mine = TcpStream::connect(dest).unwrap();
    common::bash(&format!("exec 3<>/dev/tcp/127.0.0.1/{}", dest.port()));

    let theirs = kernel.wait_for("the child's connect", |e| match e {
        Event::Connection(c) if c.destination == ip(dest) => Some(c.clone()),
        _ => None,
    });
    assert_eq!(&*theirs.process.command, "bash");
    assert_ne!(theirs.process.pid, std::process::id());
    let mine = kernel.collect_for(Duration::from_millis(500), |e| {
        e.process()
            .filter(|p| p.pid == std::process::id())
            .map(|_| e.clone())
    });
    assert!(mine.is_empty(), "events of the ignored process: {mine:?}");
}

#[test]
fn counters_count_what_was_received() {
    let mut kernel = Kernel::start();
    let dest = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_tcp_port()));
    let _ = TcpStream::connect(dest);
    kernel.wait_for("connect", my_connect(ip(dest)));
    kernel.wait_for("outcome", outcome_to(dest));
    let stats = kernel.probes().stats();
    assert!(stats.received.connection >= 1, "{stats:?}");
    assert!(stats.received.tcp_outcome >= 1, "{stats:?}");
    assert_eq!(stats.decode_errors, 0);
    assert_eq!(
        stats.lost.total(),
        0,
        "nothing should be lost at this rate: {stats:?}"
    );
}

/// The kernel's comm of this thread (test threads are named after the test, truncated).
fn thread_comm() -> String {
    let path = format!("/proc/self/task/{}/comm", my_tid());
    std::fs::read_to_string(path).unwrap().trim_end().to_owned()
}
