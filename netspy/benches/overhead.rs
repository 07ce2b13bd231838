//! Probe overhead on the traced syscalls: loopback TCP connects (socket, connect, accept),
//! UDP connects, and bare socket() + close timed with
//! the probes detached and attached, alternating in one run, reported as ratios (absolute
//! times on a shared machine are noise). Needs root, like the daemon.
//!
//! `cargo bench -p netspy --bench overhead`
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark prints its report"
)]

use std::{
    hint::black_box,
    net::{TcpListener, TcpStream, UdpSocket},
    time::{Duration, Instant},
};

use netspy::probes::{ProbeOptions, Probes};

const ROUNDS: usize = 5;
const TCP_CONNECTS: usize = 2000;
const UDP_CONNECTS: usize = 20_000;
const SOCKETS: usize = 20_000;

fn tcp(listener: &TcpListener) -> Duration {
    let addr = listener.local_addr().unwrap();
    let start = Instant::now();
    for _ in 0..TCP_CONNECTS {
        let stream = TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        black_box((stream, accepted));
    }
    start.elapsed() / TCP_CONNECTS as u32
}

fn udp(socket: &UdpSocket, to: std::net::SocketAddr) -> Duration {
    let start = Instant::now();
    for _ in 0..UDP_CONNECTS {
        socket.connect(to).unwrap();
    }
    start.elapsed() / UDP_CONNECTS as u32
}

fn sockets() -> Duration {
    let start = Instant::now();
    for _ in 0..SOCKETS {
        black_box(socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap());
    }
    start.elapsed() / SOCKETS as u32
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (mut tcp_off, mut tcp_on, mut udp_off, mut udp_on) = (vec![], vec![], vec![], vec![]);
    let (mut socket_off, mut socket_on) = (vec![], vec![]);
    let mut received = 0;
    let mut lost = 0;
    for _ in 0..ROUNDS {
        tcp_off.push(tcp(&listener));
        udp_off.push(udp(&socket, target));
        socket_off.push(sockets());
        let _guard = runtime.enter();
        let disabled_hooks = std::env::var("NETSPY_BENCH_DISABLE")
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let options = ProbeOptions {
            disabled_hooks,
            ..Default::default()
        };
        let (probes, mut events) = Probes::start(&options).expect("needs root");
        // Drain like the daemon does, so the rings never fill.
        let no_drain = std::env::var_os("NETSPY_BENCH_NO_DRAIN").is_some();
        let drain = runtime.spawn(async move {
            if no_drain {
                std::future::pending::<()>().await;
            }
            while events.recv().await.is_some() {}
        });
        tcp_on.push(tcp(&listener));
        udp_on.push(udp(&socket, target));
        socket_on.push(sockets());
        std::thread::sleep(Duration::from_millis(200));
        let stats = probes.stats();
        received += stats.received.total();
        lost += stats.lost.total();
        drop(probes);
        drain.abort();
    }
    let (tcp_off, tcp_on, udp_off, udp_on) = (
        median(tcp_off),
        median(tcp_on),
        median(udp_off),
        median(udp_on),
    );
    println!("probe overhead, median of {ROUNDS} alternating rounds:");
    println!(
        "  TCP connect+accept on loopback: {:.3}x with probes ({tcp_off:?} -> {tcp_on:?} per connect)",
        tcp_on.as_secs_f64() / tcp_off.as_secs_f64()
    );
    println!(
        "  UDP connect():                  {:.3}x with probes ({udp_off:?} -> {udp_on:?} per call)",
        udp_on.as_secs_f64() / udp_off.as_secs_f64()
    );
    let (socket_off, socket_on) = (median(socket_off), median(socket_on));
    println!(
        "  UDP socket() + close():         {:.3}x with probes ({socket_off:?} -> {socket_on:?} per socket)",
        socket_on.as_secs_f64() / socket_off.as_secs_f64()
    );
    println!("  events received {received}, lost in the kernel {lost}");
}
