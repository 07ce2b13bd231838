//! Fleet questions answered by a real Prometheus (Debian's package, installed by the test
//! set-up) scraping two real daemons as two targets: which targets and processes had
//! refused connects in the last 5 minutes, drops by reason, p99 handshake latency by target,
//! with the numbers checked against the traffic this test made.
//!
//! The daemons see different traffic because the second stops before the second burst.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod common;

use std::{
    collections::BTreeMap,
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    KillOnDrop, bash, closed_tcp_port,
    daemon::{DaemonProcess, client},
};
use serde_json::Value;

/// `n` refused connects from a bash whose name (comm) is `name`: bash's `/dev/tcp`
/// connects in the shell process itself.
fn connects(name: &str, port: u16, n: usize) {
    bash(&format!(
        "printf {name} > /proc/self/comm; for i in $(seq {n}); do {{ : <>/dev/tcp/127.0.0.1/{port}; }} 2>/dev/null; done; true"
    ));
}

/// A loopback port nothing is bound to, for Prometheus to listen on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Prometheus {
    child: KillOnDrop,
    url: String,
    dir: std::path::PathBuf,
}

impl Prometheus {
    /// Prometheus scraping `targets` every second, its data in a directory of its own.
    fn start(targets: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("netspy-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: netspy\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (cargo xtask test installs Debian's prometheus)");
        Self {
            child: KillOnDrop(child),
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// The result vector of an instant PromQL query (empty while Prometheus starts).
    fn query(&self, promql: &str) -> Vec<Value> {
        let Ok(answer) = client()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
        else {
            return Vec::new();
        };
        let body: Value = answer.json().unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `promql`'s answer, as (label values joined by `/`) -> value, is `expected`.
    /// `increase()` extrapolates from the samples it has to the whole range, so its answer
    /// converges on the exact count as samples accumulate (about 10 s at one a second).
    fn expect(&self, promql: &str, labels: &[&str], expected: &[(String, f64)]) {
        let expected: BTreeMap<String, f64> = expected.iter().cloned().collect();
        self.answer(promql, labels, |answer| *answer == expected);
    }

    /// `promql`'s answer as (label values joined by `/`) -> value, once `done` accepts it.
    fn answer(
        &self,
        promql: &str,
        labels: &[&str],
        done: impl Fn(&BTreeMap<String, f64>) -> bool,
    ) -> BTreeMap<String, f64> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer: BTreeMap<String, f64> = self
                .query(promql)
                .iter()
                .map(|r| {
                    let key: Vec<&str> = labels
                        .iter()
                        .map(|l| r["metric"][*l].as_str().unwrap_or(""))
                        .collect();
                    let value = r["value"][1].as_str().unwrap().parse().unwrap();
                    (key.join("/"), value)
                })
                .collect();
            if done(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: still {answer:?} after 60 s"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Stopped first, so that it writes nothing more into the directory.
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn prometheus_answers_fleet_questions_across_two_daemons() {
    // Room for every name on a busy host: the test's processes must have their own series.
    let first = DaemonProcess::start(&["--metrics-processes", "1000"]);
    let second = DaemonProcess::start(&["--metrics-processes", "1000"]);
    first.wait_ready();
    second.wait_ready();
    let (a, b) = (first.address.clone(), second.address.clone());
    let prometheus = Prometheus::start(&[&a, &b]);
    // Both scraped twice before the traffic: its series appear after the first scrape, so
    // each is shown at zero once and increase() counts all of it.
    prometheus.answer(
        r#"count_over_time(up{job="netspy"}[5m]) >= 2"#,
        &["instance"],
        |r| r.len() == 2,
    );
    let closed = closed_tcp_port();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    // Both daemons see these.
    connects("nsp-refused", closed, 3);
    connects("nsp-client", open, 4);
    let refused = r#"round(sum by (instance, process) (increase(netspy_tcp_connect_results_total{process=~"nsp-.*",result="refused"}[5m])))"#;
    prometheus.expect(
        refused,
        &["instance", "process"],
        &[
            (format!("{a}/nsp-refused"), 3.0),
            (format!("{b}/nsp-refused"), 3.0),
        ],
    );
    // The second host goes away; only the first sees these. (After eight more scrapes: once
    // a series ends, increase() extrapolates half a scrape interval past its last sample, so
    // three counts need that many samples to still round to three.)
    std::thread::sleep(Duration::from_secs(8));
    drop(second);
    connects("nsp-refused", closed, 2);

    prometheus.expect(
        refused,
        &["instance", "process"],
        &[
            (format!("{a}/nsp-refused"), 5.0),
            (format!("{b}/nsp-refused"), 3.0),
        ],
    );
    prometheus.expect(
        r#"round(sum by (instance) (increase(netspy_tcp_connect_results_total{process="nsp-client",result="established"}[5m])))"#,
        &["instance"],
        &[(a.clone(), 4.0), (b.clone(), 4.0)],
    );
    // Each refused SYN is a NO_SOCKET drop, given to its sender.
    prometheus.expect(
        r#"round(sum by (instance, reason) (increase(netspy_packet_drops_total{process="nsp-refused"}[5m])))"#,
        &["instance", "reason"],
        &[
            (format!("{a}/NO_SOCKET"), 5.0),
            (format!("{b}/NO_SOCKET"), 3.0),
        ],
    );
    prometheus.expect(
        r#"sum by (instance) (last_over_time(netspy_connect_attempts_total{process=~"nsp-.*"}[5m]))"#,
        &["instance"],
        &[(a.clone(), 9.0), (b.clone(), 7.0)],
    );

    // p99 of the handshakes each host saw: loopback ones take well under a millisecond;
    // 50 ms leaves room for whatever else a busy CI host connects to.
    let p99 = prometheus.answer(
        "histogram_quantile(0.99, sum by (instance, le) (rate(netspy_tcp_connect_latency_seconds_bucket[5m])))",
        &["instance"],
        |r| r.len() == 2 && r.values().all(|v| v.is_finite() && *v > 0.0),
    );
    for (target, seconds) in &p99 {
        assert!(*seconds <= 0.05, "p99 of {target}: {seconds} s");
    }
}
