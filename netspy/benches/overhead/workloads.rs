//! The traced syscalls, each in a tight loop: nanoseconds per call.

use std::{
    hint::black_box,
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::Instant,
};

/// One kind of traced call.
#[derive(Clone, Copy)]
pub struct Workload {
    /// How the report names it.
    pub name: &'static str,
    /// Calls per round.
    pub calls: u32,
    run: fn(&Sockets, u32),
}

/// Sockets the workloads reuse.
pub struct Sockets {
    listener: TcpListener,
    udp: UdpSocket,
    udp_target: SocketAddr,
    closed_port: SocketAddr,
}

impl Sockets {
    /// Loopback sockets for every workload.
    pub fn new() -> Self {
        let closed_port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        Self {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            udp: UdpSocket::bind("127.0.0.1:0").unwrap(),
            udp_target: UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap(),
            closed_port,
        }
    }
}

/// Every workload, in report order.
pub const WORKLOADS: [Workload; 4] = [
    Workload {
        name: "UDP connect()",
        calls: 100_000,
        run: |s, n| {
            for _ in 0..n {
                s.udp.connect(s.udp_target).unwrap();
            }
        },
    },
    Workload {
        name: "TCP connect + accept",
        calls: 2_000,
        run: |s, n| {
            let addr = s.listener.local_addr().unwrap();
            for _ in 0..n {
                let stream = TcpStream::connect(addr).unwrap();
                let (accepted, _) = s.listener.accept().unwrap();
                black_box((stream, accepted));
            }
        },
    },
    Workload {
        name: "UDP socket() + close()",
        calls: 20_000,
        run: |_, n| {
            for _ in 0..n {
                black_box(
                    socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
                        .unwrap(),
                );
            }
        },
    },
    Workload {
        name: "dropped datagram (sendto a closed port)",
        calls: 20_000,
        run: |s, n| {
            for _ in 0..n {
                let _ = s.udp.send_to(b"x", s.closed_port);
            }
        },
    },
];

impl Workload {
    /// A tenth of a round, unmeasured.
    pub fn warm_up(&self, sockets: &Sockets) {
        let short = Self {
            calls: self.calls / 10,
            ..*self
        };
        short.measure(sockets);
    }

    /// Runs the workload once: nanoseconds per call.
    pub fn measure(&self, sockets: &Sockets) -> f64 {
        // A connected socket sends only to its peer: the drop workload needs it unconnected.
        let unconnected = UdpSocket::bind("127.0.0.1:0").unwrap();
        let own = Sockets {
            listener: sockets.listener.try_clone().unwrap(),
            udp: if self.name.starts_with("dropped") {
                unconnected
            } else {
                sockets.udp.try_clone().unwrap()
            },
            udp_target: sockets.udp_target,
            closed_port: sockets.closed_port,
        };
        let start = Instant::now();
        (self.run)(&own, self.calls);
        start.elapsed().as_nanos() as f64 / f64::from(self.calls)
    }
}
