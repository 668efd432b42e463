//! `reco serve`: recommendations over HTTP from the same models the CLI trains and evaluates.
//!
//! Events are the source of truth and are committed before a request is answered (SQLite in
//! WAL mode or PostgreSQL, one code path); models are derived from them, saved as ordinary reco
//! artifacts, versioned, gated on a recent hold-out and swapped atomically. Between trainings,
//! each user's newer events are folded into the next answer (the model's own fold-in for factor
//! models, history-based scoring for the others), and rejected items never come back.
//!
//! Modules: [`config`] (serve.toml), [`store`] (the database), [`catalog`] (items in memory),
//! [`live`] (events since the active model, bounded), [`engine`] (the answers), [`trainer`]
//! (dataset from events, gate, artifacts), [`server`] (state, writer, activation), [`api`]
//! (routes and OpenAPI), [`seed`] (a store from a dataset), [`telemetry`] (Prometheus); the
//! online loop: [`impressions`] (the log of lists served), [`experiment`] and [`online`]
//! (A/B tests and interleaving), [`drift`] and [`quality`] (monitoring).
#![warn(missing_docs)]

pub mod api;
pub mod catalog;
pub mod config;
pub mod dashboard;
pub mod drift;
pub mod engine;
pub mod error;
pub mod experiment;
pub mod impressions;
pub mod live;
pub mod online;
pub mod quality;
pub mod seed;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod trainer;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::timeout::TimeoutLayer;

pub use config::Config;
pub use error::{Result, ServeError};
pub use server::{start, AppState};

async fn read_auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match api::authorize(&s, api::Access::Read, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

async fn write_auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match api::authorize(&s, api::Access::Write, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

async fn not_found() -> ServeError {
    ServeError::NotFound("no such route (the routes are listed at /openapi.json)".into())
}

/// The HTTP application over a started state.
pub fn app(state: AppState) -> Router {
    telemetry::install();
    let limits = &state.cfg.limits;
    let reads = Router::new()
        .route("/v1/recommend/{user}", get(api::recommend))
        .route("/v1/recommend/session", post(api::recommend_session))
        .route("/v1/items/{item}/similar", get(api::similar))
        .route("/v1/popular", get(api::popular))
        .route("/v1/latest", get(api::latest))
        .route("/v1/users/{user}", get(api::get_user))
        .route("/v1/items/{item}", get(api::get_item))
        .route_layer(from_fn_with_state(state.clone(), read_auth));
    let writes = Router::new()
        .route("/v1/feedback", post(api::feedback))
        .route(
            "/v1/users/{user}",
            put(api::put_user).delete(api::delete_user),
        )
        .route(
            "/v1/items/{item}",
            put(api::put_item).delete(api::delete_item),
        )
        .route("/v1/items", post(api::post_items))
        .route("/v1/users/{user}/opt-out", put(api::put_opt_out))
        .route("/v1/users/{user}/export", get(api::export_user))
        .route("/v1/models", get(api::models))
        .route("/v1/models/{version}/activate", post(api::activate))
        .route("/v1/models/rollback", post(api::rollback))
        .route(
            "/v1/experiments",
            get(api::experiments).post(api::start_experiment),
        )
        .route("/v1/experiments/{name}", get(api::experiment_results))
        .route("/v1/experiments/{name}/stop", post(api::stop_experiment))
        .route("/v1/impressions/stats", get(api::impression_stats))
        .route("/v1/monitoring/drift", get(api::drift))
        .route("/v1/monitoring/quality", get(api::quality))
        .route_layer(from_fn_with_state(state.clone(), write_auth));
    // Training takes as long as it takes (it runs to the end even if the client leaves), so
    // its route has no request timeout.
    let training = Router::new()
        .route("/v1/models/retrain", post(api::retrain))
        .route_layer(from_fn_with_state(state.clone(), write_auth));
    let timeout = TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        Duration::from_millis(limits.timeout_ms),
    );
    Router::new()
        .route("/health/live", get(api::live))
        .route("/health/ready", get(api::ready))
        .route("/metrics", get(api::prometheus))
        .route("/openapi.json", get(api::openapi))
        .route("/dashboard", get(dashboard::index))
        .route("/dashboard/", get(dashboard::index))
        .route("/dashboard/app.js", get(dashboard::script))
        .route("/dashboard/app.css", get(dashboard::style))
        .merge(reads)
        .merge(writes)
        .layer(timeout)
        .merge(training)
        .fallback(not_found)
        .layer(from_fn(api::json_errors))
        .layer(from_fn(api::observe))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

/// Runs the server until Ctrl-C or SIGTERM: starts the state (seeding the store from `seed`
/// when it is empty), binds, serves, and shuts down gracefully (requests in flight finish,
/// the database is closed).
pub fn run(cfg: Config, seed: Option<reco_core::Dataset>, threads: usize) -> Result<()> {
    telemetry::init_log();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| ServeError::Config(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let listen = cfg.listen.clone();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| ServeError::Config(format!("cannot listen on {listen}: {e}")))?;
        let state = start(cfg, seed).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServeError::Config(e.to_string()))?;
        eprintln!("reco serve: listening on http://{addr}");
        let store = state.store.clone();
        let impressions = state.impressions.clone();
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| ServeError::Config(format!("server: {e}")))?;
        // Impressions still queued are written before the database closes.
        impressions.flush().await;
        store.close().await;
        Ok(())
    })
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
