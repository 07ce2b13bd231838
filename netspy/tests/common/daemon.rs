//! A real daemon (probes, store, API) running in this test process on 127.0.0.1:0, shared by
//! the tests of one binary; and a bare API (no probes) for tests that only need HTTP.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock, RwLock},
    time::{Duration, Instant},
};

use netspy::{
    daemon::{DaemonConfig, serve},
    probes::ProbeOptions,
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
        let config = DaemonConfig {
            token: None,
            limits: Limits::default(),
            max_list: 500,
            // The test process makes the traffic it checks: watch it too.
            probes: ProbeOptions::default(),
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

/// Serves the API alone (probes never attach, so /health says 503) with an optional token.
pub fn bare_api(token: Option<&str>) -> String {
    let token: Option<Arc<str>> = token.map(Arc::from);
    let addr = spawn(move |listener| async move {
        let query = Query::new(
            Arc::new(RwLock::new(Store::new(Limits::default()))),
            Arc::new(Status::default()),
            100,
        );
        let app = netspy::api::router(query, token);
        axum_serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    axum::serve(listener, app).await.expect("serve");
}

/// Runs `serve` on a listener bound to 127.0.0.1:0 in a runtime of its own thread.
fn spawn<F, Fut>(serve: F) -> SocketAddr
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
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GET a path of the shared daemon; status and JSON body.
pub fn get(path: &str) -> (u16, Value) {
    let response = client().get(format!("{}{path}", url())).send().unwrap();
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

/// Polls `path` until `done` accepts the body, then returns it (panics after 15 s).
pub fn poll(path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(path);
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
