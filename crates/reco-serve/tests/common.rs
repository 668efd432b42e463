//! Test harness: a server state on a fresh database (an SQLite file in a temporary directory,
//! or a new database on the PostgreSQL server named by `RECO_TEST_POSTGRES_URL`), called
//! through the router without a socket.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use reco_core::synth::{notebook, NotebookConfig};
use reco_core::Dataset;
use reco_serve::{AppState, Config};
use serde_json::Value;
use sqlx::Executor;
use tower::ServiceExt;

/// The backends a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A running server state and its router.
pub struct Server {
    pub app: Router,
    pub state: AppState,
    pub cfg: Config,
    pub dir: tempfile::TempDir,
}

/// Notebook data, larger than the default so that models have signal: 120 users, 80 items.
pub fn data() -> Dataset {
    notebook(&NotebookConfig {
        users: 120,
        items: 80,
        ..Default::default()
    })
    .expect("notebook data")
}

/// Held by a test while it sets gauges and reads them back: the metrics recorder is global to
/// the process, and the SQLite and PostgreSQL variants of a test run at once.
pub static GAUGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A database URL for a new, empty database; `None` when PostgreSQL is not configured and not
/// required (CI sets RECO_REQUIRE_POSTGRES=1, so there a missing server fails the test).
pub async fn database(db: Db, dir: &std::path::Path) -> Option<String> {
    match db {
        Db::Sqlite => Some(format!("sqlite://{}", dir.join("reco.db").display())),
        Db::Postgres => {
            let Ok(admin) = std::env::var("RECO_TEST_POSTGRES_URL") else {
                assert!(
                    std::env::var("RECO_REQUIRE_POSTGRES").is_err(),
                    "RECO_REQUIRE_POSTGRES is set but RECO_TEST_POSTGRES_URL is not"
                );
                eprintln!("skipped: RECO_TEST_POSTGRES_URL is not set");
                return None;
            };
            sqlx::any::install_default_drivers();
            let name = format!(
                "reco_test_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let pool = sqlx::AnyPool::connect(&admin)
                .await
                .expect("connect to PostgreSQL");
            pool.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                .await
                .expect("drop");
            pool.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create database");
            pool.close().await;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            Some(format!("{base}/{name}"))
        }
    }
}

/// Starts a server on `db` seeded with `seed`, after `tune` adjusts the configuration.
pub async fn start(
    db: Db,
    seed: Option<Dataset>,
    tune: impl FnOnce(&mut Config),
) -> Option<Server> {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database(db, dir.path()).await?;
    let mut cfg = Config {
        database: url,
        artifacts: Some(dir.path().join("models")),
        ..Default::default()
    };
    cfg.model = reco_serve::config::ModelSource::Inline(serde_json::json!({
        "model": "ials", "factors": 16, "epochs": 8, "regularization": 0.05, "alpha": 2.0
    }));
    cfg.retrain.after_events = 0;
    cfg.retrain.on_start = false;
    cfg.retrain.tolerance = f64::INFINITY;
    tune(&mut cfg);
    Some(restart(cfg, dir, seed).await)
}

/// Starts a server state on an existing configuration and directory (a restart).
pub async fn restart(cfg: Config, dir: tempfile::TempDir, seed: Option<Dataset>) -> Server {
    let state = reco_serve::start(cfg.clone(), seed).await.expect("start");
    let app = reco_serve::app(state.clone());
    Server {
        app,
        state,
        cfg,
        dir,
    }
}

impl Server {
    /// Sends a request; returns the status and the JSON body (Null when not JSON).
    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(method, uri, body.map(|b| b.to_string()), &[])
            .await
    }

    /// Sends a request with a raw body and headers.
    pub async fn call_with(
        &self,
        method: &str,
        uri: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map_or_else(Body::empty, Body::from))
            .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    /// Item ids of a list response.
    pub async fn ids(&self, uri: &str) -> Vec<String> {
        let (s, v) = self.call("GET", uri, None).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        item_ids(&v)
    }

    /// Trains now and activates the result; returns the version row.
    pub async fn retrain(&self) -> Value {
        let (s, v) = self.call("POST", "/v1/models/retrain", None).await;
        assert_eq!(s, StatusCode::OK, "retrain: {v}");
        v
    }

    /// Sends events `(user, item, type)`.
    pub async fn send(&self, events: &[(&str, &str, &str)]) -> Value {
        let events: Vec<Value> = events
            .iter()
            .map(|(u, i, t)| serde_json::json!({"user": u, "item": i, "type": t}))
            .collect();
        let (s, v) = self
            .call(
                "POST",
                "/v1/feedback",
                Some(serde_json::json!({ "events": events })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "feedback: {v}");
        v
    }
}

/// Item ids of a list response.
pub fn item_ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Declares a test for each backend: `NAME_sqlite` and `NAME_postgres`, each calling
/// `NAME(db)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Postgres).await;
                }
            )*
        }
    };
}
