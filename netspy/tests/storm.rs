//! Drop storms against the real daemon binary with a low `--drop-event-rate`: past each
//! CPU's share of full drop events, drops are counted by reason and owner in the kernel, and
//! the drop summary's totals stay exact. Checked against the kernel's own counts: nft's rule
//! counter (unattributed drops, the per-reason array) and a UDP socket's `drops` in
//! /proc/net/udp (drops with an owner, the (reason, owner) map).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use common::daemon::{DaemonProcess, client};
use serde_json::Value;
use socket2::{Domain, Socket, Type};

/// A daemon of the test's own (killed when dropped) sending one full drop event per CPU
/// per 100 ms window: a few hundred datagrams are a storm.
fn daemon() -> DaemonProcess {
    let daemon = DaemonProcess::start(&["--drop-event-rate", "10"]);
    daemon.wait_ready();
    daemon
}

fn get(daemon: &DaemonProcess, path: &str) -> Value {
    let response = client()
        .get(format!("{}{path}", daemon.url()))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().unwrap()
}

/// Polls the drop summary for `query` until `reason` counts `want` (sampled-out counts reach
/// the daemon within about 2 s); returns the summary.
fn summary_until(daemon: &DaemonProcess, query: &str, reason: &str, want: u64) -> Value {
    let path = format!("/api/packet-drop-summary?duration_seconds=600&{query}");
    let count = |summary: &Value| {
        summary["by_reason"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reason"] == reason)
            .map_or(0, |r| r["count"].as_u64().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let summary = get(daemon, &path);
        if count(&summary) == want || Instant::now() > deadline {
            assert_eq!(count(&summary), want, "{reason} drops counted: {summary}");
            return summary;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn unattributed_drops_past_the_event_rate_are_counted_exactly() {
    let daemon = daemon();
    let netns = common::netns::Netns::create();
    let target = (netns.peer_ip.as_str(), common::netns::DROPPED_UDP_PORT);
    let sender = UdpSocket::bind("0.0.0.0:0").unwrap();
    // The first datagram resolves the neighbour; a burst before that would be dropped in
    // the neighbour queue instead of by nft.
    sender.send_to(b"first", target).unwrap();
    summary_until(&daemon, "", "NETFILTER_DROP", 1);
    for _ in 0..3000 {
        sender.send_to(b"storm", target).unwrap();
    }
    let dropped = netns.udp_dropped_by_nft();
    assert_eq!(dropped, 3001, "nft dropped every datagram");
    let summary = summary_until(&daemon, "", "NETFILTER_DROP", dropped);
    let sampled = summary["sampled_out"].as_u64().unwrap();
    assert!(
        sampled >= 2000,
        "at 10 full events per CPU per second most of the storm is sampled out: {summary}"
    );
    assert!(
        summary["message"]
            .as_str()
            .unwrap()
            .contains("counted without full events")
    );

    // Lists show the full events only (the window's few full events may all have gone to
    // other drops, such as the new veth's IPv6 multicast), and say what they cannot show.
    let list = get(&daemon, "/api/list-packet-drops?limit=10000");
    let listed = list["events_by_pid"]["0"].as_array().map_or(0, |drops| {
        drops
            .iter()
            .filter(|d| d["drop_reason"] == "NETFILTER_DROP")
            .count()
    });
    assert!(
        (listed as u64) < dropped,
        "{listed} full events of {dropped}: {list}"
    );
    assert!(
        list["sampled_out"].as_u64().unwrap() >= dropped - listed as u64,
        "every NETFILTER_DROP not listed is counted as sampled out: {list}"
    );

    let health = get(&daemon, "/health");
    assert!(
        health["events"]["sampled_out"]["packet_drop"]
            .as_u64()
            .unwrap()
            >= sampled
    );
    assert_eq!(health["events"]["sampled_uncounted"], 0);
    let metrics = client()
        .get(format!("{}/metrics", daemon.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with(r#"netspy_events_sampled_out_total{kind="packet_drop"}"#))
        .unwrap_or_else(|| panic!("no sampled-out metric: {metrics}"));
    assert!(line.rsplit(' ').next().unwrap().parse::<u64>().unwrap() >= sampled);
}

/// Drops of a UDP socket whose receive queue is full are its owner's: counted by reason and
/// owner (the thread that created it, named here so that only this test's drops match).
#[test]
fn drops_with_an_owner_past_the_event_rate_are_counted_by_owner() {
    let daemon = daemon();
    let (receiver, port) = std::thread::Builder::new()
        .name("stormowner".into())
        .spawn(|| {
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
            socket.set_recv_buffer_size(1).unwrap(); // the kernel rounds up to its minimum
            socket
                .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
                .unwrap();
            let port = socket.local_addr().unwrap().as_socket().unwrap().port();
            (socket, port)
        })
        .unwrap()
        .join()
        .unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..2000 {
        sender.send_to(&[0u8; 512], ("127.0.0.1", port)).unwrap();
    }
    let dropped = socket_drops(port);
    assert!(dropped > 1000, "the queue overflowed: {dropped}");
    let summary = summary_until(&daemon, "command=stormowner", "SOCKET_RCVBUFF", dropped);
    assert!(summary["sampled_out"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["unattributed"], 0, "{summary}");
    // The kernel counts them under the thread's and the process's name: either finds them.
    let process = std::fs::read_to_string("/proc/self/comm").unwrap();
    let query = format!("command={}", process.trim_end());
    summary_until(&daemon, &query, "SOCKET_RCVBUFF", dropped);
    drop(receiver);
}

/// The `drops` column of the socket bound to 127.0.0.1:`port` in /proc/net/udp.
fn socket_drops(port: u16) -> u64 {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no socket {local} in /proc/net/udp:\n{table}"))
}
