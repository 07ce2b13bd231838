//! The traced syscalls, each in a tight loop: nanoseconds per call.

use std::{
    hint::black_box,
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::atomic::{AtomicUsize, Ordering},
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
        calls: 5_000,
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
        calls: 100_000,
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

    /// The best of three runs, nanoseconds per call: interference on a shared machine only
    /// ever adds time.
    pub fn best_of_three(&self, sockets: &Sockets) -> f64 {
        (0..3)
            .map(|_| self.measure(sockets))
            .fold(f64::INFINITY, f64::min)
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

/// The CPU the workloads run on now (the last unless `run_on` chose another); tracers
/// started now run on the others.
static WORKLOAD_CPU: AtomicUsize = AtomicUsize::new(usize::MAX);

/// How many CPUs this machine has online (not `available_parallelism`, which counts only
/// the CPUs the calling thread may run on: one, once pinned).
pub fn cpus() -> usize {
    // SAFETY: sysconf reads a system value; no pointers.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1)
}

/// The CPU the workloads run on now.
pub fn workload_cpu() -> usize {
    match WORKLOAD_CPU.load(Ordering::Relaxed) {
        usize::MAX => cpus() - 1,
        cpu => cpu,
    }
}

/// Moves the calling (measuring) thread to `cpu`; tracers started from now on keep off it.
pub fn run_on(cpu: usize) -> std::io::Result<()> {
    pin([cpu])?;
    WORKLOAD_CPU.store(cpu, Ordering::Relaxed);
    Ok(())
}

/// Pins the calling thread to `cpus` (the CPU numbers it may run on).
pub fn pin(cpus: impl IntoIterator<Item = usize>) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity gets a valid pointer and size.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
