//! A real daemon (probes, store, API) running in this test process on 127.0.0.1:0, shared by
//! the tests of one binary; and a bare API (no probes) for tests that only need HTTP.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use netspy::{
    api::{ApiOptions, ServerLimits},
    daemon::{DaemonConfig, serve},
    mcp::SessionLimits,
    query::{Query, Status},
    store::{Limits, Store},
};
use reqwest::blocking::Client;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Base URL of the shared daemon, started on first use and ready (probes attached).
pub fn url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        // The test process makes the traffic it checks: the default probes watch it too.
        let config = DaemonConfig {
            max_list: 500,
            ..DaemonConfig::default()
        };
        let addr = spawn(move |listener| async move {
            serve(listener, config, CancellationToken::new())
                .await
                .expect("daemon failed");
        });
        let url = format!("http://{addr}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while client()
            .get(format!("{url}/health"))
            .send()
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200)
        {
            assert!(Instant::now() < deadline, "daemon not ready within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        url
    })
}

/// Serves the API and MCP routes alone (probes never attach, so /health says 503) with an
/// optional token.
pub fn bare_api(token: Option<&str>) -> String {
    bare_api_with(
        ApiOptions {
            token: token.map(Arc::from),
            ..ApiOptions::default()
        },
        ServerLimits::default(),
        SessionLimits::default(),
    )
}

/// The bare API with its server, protection and session limits as given.
pub fn bare_api_with(options: ApiOptions, limits: ServerLimits, sessions: SessionLimits) -> String {
    let addr = spawn(move |listener| async move {
        let query = Query::new(
            Store::new(Limits::default()),
            Arc::new(Status::default()),
            100,
        );
        let shutdown = CancellationToken::new();
        let mcp = netspy::mcp::router(
            query.clone(),
            None,
            sessions,
            options.stats.clone(),
            shutdown.clone(),
        );
        let app = netspy::api::router(query, &options, mcp);
        netspy::api::serve(listener, app, limits, options.stats.clone(), shutdown).await;
    });
    format!("http://{addr}")
}

/// Runs `serve` on a listener bound to 127.0.0.1:0 in a runtime of its own thread; returns
/// the address.
pub fn spawn<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener).await;
        });
    });
    rx.recv().unwrap()
}

/// An HTTP client with a timeout.
pub fn client() -> Client {
    netspy::tls::install_provider();
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GET a path of the shared daemon; status and JSON body.
pub fn get(path: &str) -> (u16, Value) {
    get_at(url(), path)
}

/// GET a path of the daemon at `base`; status and JSON body.
pub fn get_at(base: &str, path: &str) -> (u16, Value) {
    let response = client().get(format!("{base}{path}")).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// POST a raw body to a path of the shared daemon; status and JSON body.
pub fn post(path: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
    let response = client()
        .post(format!("{}{path}", url()))
        .body(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Polls `path` of the shared daemon until `done` accepts the body, then returns it
/// (panics after 15 s).
pub fn poll(path: &str, done: impl Fn(&Value) -> bool) -> Value {
    poll_at(url(), path, done)
}

/// Polls `path` of the daemon at `base` until `done` accepts the body, then returns it
/// (panics after 15 s).
pub fn poll_at(base: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get_at(base, path);
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never satisfied the test; last answer {status}: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Python interpreter of the venv `cargo xtask setup` makes, with the official MCP SDK.
pub fn mcp_python() -> String {
    std::env::var("NETSPY_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/../target/mcp-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// Runs the MCP client script with `transport` and `target` and a plan of tool calls.
pub fn mcp_client(args: &[&str], plan: &Value) -> Value {
    use std::io::Write;
    let python = mcp_python();
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run `cargo xtask setup` (the README's test command does)"
    );
    let mut child = std::process::Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_client.py"))
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "MCP client {args:?} failed: {stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("bad report {e}: {stderr}"))
}

/// The real `netspy daemon` binary on 127.0.0.1:0, its stderr lines on a channel; killed
/// when dropped, so a failing test leaves none running.
pub struct DaemonProcess {
    /// The process.
    pub child: super::KillOnDrop,
    /// `127.0.0.1:port`.
    pub address: String,
    /// stderr, line by line.
    pub lines: std::sync::mpsc::Receiver<String>,
    /// stderr lines read before the address was known.
    pub early: Vec<String>,
}

impl DaemonProcess {
    /// Starts `netspy daemon --listen 127.0.0.1:0 <args>` and waits for its address.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// [`Self::start`] with these environment variables set.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut child = super::KillOnDrop(
            std::process::Command::new(env!("CARGO_BIN_EXE_netspy"))
                .args(["daemon", "--listen", "127.0.0.1:0"])
                .args(args)
                .env_remove("RUST_LOG")
                .envs(env.iter().copied())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut early = Vec::new();
        let address = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no address in {early:?}"));
            early.push(line.clone());
            if let Some(rest) = line.split("serving the API on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        Self {
            child,
            address,
            lines,
            early,
        }
    }

    /// `http://address`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Polls /health until it answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while client()
            .get(format!("{}/health", self.url()))
            .send()
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200)
        {
            assert!(Instant::now() < deadline, "daemon never became healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits up to `limit` for the daemon to exit; its status, or None if it still runs.
    pub fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The stderr lines that arrived since the last call.
    pub fn new_lines(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}
