//! The `serve` fuzz target's body: arbitrary HTTP requests against a running `reco serve` state
//! (an SQLite database on a memory file system, seeded with notebook data, an iALS model
//! trained at start), sent through the router without a socket.
//!
//! An input is `METHOD URI [CONTENT-TYPE]`, a newline, then the body. Every answer must be a
//! client error or a success, never a server error (a 500 is what a panic caught by the
//! router, a failed query or an unchecked size becomes); an error must be the JSON error body
//! with its status and a message; a list must hold finite scores and no more items than asked.
//!
//! `fuzz_targets/serve.rs` calls [`serve`] under libFuzzer; `crates/reco-serve/tests/
//! fuzz_corpus.rs` includes this file and replays `fuzz/corpus/serve/*` through it in CI.

use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use reco_core::synth::{notebook, NotebookConfig};
use tower::ServiceExt;

/// A started server and what it runs on. Rebuilt from scratch every [`RESET_EVERY`] inputs:
/// inputs delete users and items, and a state emptied by earlier inputs would stop the later
/// ones from reaching the code that needs data.
struct Running {
    runtime: tokio::runtime::Runtime,
    app: Router,
    dir: PathBuf,
    calls: u64,
}

const RESET_EVERY: u64 = 20_000;

static SERVER: Mutex<Option<Running>> = Mutex::new(None);

fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("reco-fuzz-serve-{}", std::process::id()))
}

fn start() -> Running {
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut cfg = reco_serve::Config {
        database: format!("sqlite://{}", dir.join("reco.db").display()),
        artifacts: Some(dir.join("models")),
        ..Default::default()
    };
    cfg.model = reco_serve::config::ModelSource::Inline(serde_json::json!({
        "model": "ials", "factors": 8, "epochs": 4
    }));
    cfg.retrain.after_events = 0;
    cfg.retrain.on_start = true;
    cfg.retrain.tolerance = f64::INFINITY;
    let data = notebook(&NotebookConfig {
        users: 60,
        items: 40,
        ..Default::default()
    })
    .expect("notebook data");
    let app = runtime.block_on(async {
        let state = reco_serve::start(cfg, Some(data)).await.expect("start");
        let app = reco_serve::app(state);
        // The first model trains in the background; inputs should meet a ready server.
        for _ in 0..600 {
            let req = Request::get("/health/ready")
                .body(Body::empty())
                .expect("request");
            let resp = app.clone().oneshot(req).await.expect("infallible");
            if resp.status() == StatusCode::OK {
                return app;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the fuzz server did not become ready in 30 s");
    });
    Running {
        runtime,
        app,
        dir,
        calls: 0,
    }
}

/// Sends one request made from `data` and checks the answer.
pub fn serve(data: &[u8]) {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let mut words = head.split(' ');
    let (Some(method), Some(uri)) = (words.next(), words.next()) else {
        return;
    };
    // Training runs for as long as the model takes; it is not request handling, and the
    // server tests cover it.
    if uri.contains("retrain") {
        return;
    }
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = words.next() {
        req = req.header("content-type", ct);
    }
    // Requests the HTTP layer could not even form (bad method or URI tokens) never reach the
    // server: hyper refuses them while parsing.
    let Ok(req) = req.body(Body::from(body.to_vec())) else {
        return;
    };
    let want_n = requested_n(req.uri().query().unwrap_or_default());
    let path = req.uri().path().to_string();
    let mut guard = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_none_or(|s| s.calls >= RESET_EVERY) {
        if let Some(old) = guard.take() {
            let _ = std::fs::remove_dir_all(&old.dir);
            old.runtime.shutdown_background();
        }
        *guard = Some(start());
    }
    let server = guard.as_mut().expect("started");
    server.calls += 1;
    let app = server.app.clone();
    let (status, bytes) = server.runtime.block_on(async move {
        let resp = app.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, bytes)
    });
    drop(guard);
    check(method, uri, &path, want_n, status, &bytes);
}

/// The `n` a list request's query asks for, when it is a plain number (as the URI parser
/// sees the query: a `?` after a `#` starts no query).
fn requested_n(query: &str) -> Option<usize> {
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("n="))
        .next_back()
        .and_then(|v| v.parse().ok())
}

fn check(
    method: &str,
    uri: &str,
    path: &str,
    want_n: Option<usize>,
    status: StatusCode,
    bytes: &[u8],
) {
    let what = format!("{method} {uri} -> {status}");
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{what}: a server error: {}",
        String::from_utf8_lossy(bytes)
    );
    if path == "/metrics" || method == "HEAD" || status == StatusCode::NO_CONTENT {
        return;
    }
    let json: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    });
    if !status.is_success() {
        let err = &json["error"];
        assert_eq!(
            err["status"].as_u64(),
            Some(u64::from(status.as_u16())),
            "{what}: error body {json}"
        );
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: an error without a message: {json}"
        );
        return;
    }
    if let Some(items) = json.get("items").and_then(|v| v.as_array()) {
        for it in items {
            assert!(
                it["score"].as_f64().is_some_and(f64::is_finite),
                "{what}: a score that is not a finite number: {it}"
            );
            assert!(it["id"].is_string(), "{what}: an item without an id: {it}");
        }
        if let Some(n) = want_n {
            assert!(items.len() <= n, "{what}: {} items for n={n}", items.len());
        }
    }
}

/// Shuts the server down and removes its files (the replay test calls it when done).
pub fn clean_up() {
    let mut guard = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = guard.take() {
        let _ = std::fs::remove_dir_all(&old.dir);
        old.runtime.shutdown_background();
    }
}
