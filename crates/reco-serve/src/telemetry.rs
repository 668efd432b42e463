//! Prometheus metrics: one recorder per process (installed on first use), rendered by
//! `/metrics`.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process; later calls do nothing).
pub fn install() {
    HANDLE.get_or_init(|| {
        let buckets = [
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        describe();
        Some(handle)
    });
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "reco_http_request_duration_seconds",
        Unit::Seconds,
        "Request latency by route and method."
    );
    describe_counter!(
        "reco_http_requests_total",
        "Requests by route, method and status."
    );
    describe_counter!("reco_events_ingested_total", "Feedback events committed.");
    describe_histogram!(
        "reco_commit_seconds",
        Unit::Seconds,
        "Time to commit one group of feedback batches."
    );
    describe_histogram!(
        "reco_training_seconds",
        Unit::Seconds,
        "Time to train, gate and save a version."
    );
    describe_gauge!("reco_model_version", "The active model version.");
    describe_gauge!(
        "reco_work_progress_ratio",
        "Share done of the current stage of long work (seeding, training), by work."
    );
    describe_gauge!(
        "reco_model_offline_metric",
        "Hold-out metrics of the active version."
    );
    describe_counter!(
        "reco_live_cache_hits_total",
        "Live-state lookups answered from memory."
    );
    describe_counter!(
        "reco_live_cache_misses_total",
        "Live-state lookups read from the database (after evictions)."
    );
    describe_gauge!("reco_live_users", "Users with live state in memory.");
    describe_gauge!("reco_catalog_items", "Items known to the server.");
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    install();
    HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map_or_else(String::new, |h| h.render())
}

/// Starts the log (stderr): `RECO_LOG` or `RUST_LOG` filters it (default `info`, the database
/// driver at `error`: its slow-statement warnings fire on every page a training reads). Does
/// nothing if a logger is installed already (tests, embedding).
pub fn init_log() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RECO_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,sqlx=error".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// How often a stage of long work is logged at most; its end is always logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The progress of long work (seeding the store, training a version) for a server, whose
/// output is a log rather than a terminal: one log line per stage every few seconds and at
/// the stage's end, and the `reco_work_progress_ratio` gauge for dashboards.
pub struct LogProgress {
    work: &'static str,
    last: Mutex<Option<(String, Instant)>>,
}

impl LogProgress {
    /// A reporter for `work` ("seeding", "training"), the gauge's label.
    pub fn new(work: &'static str) -> Self {
        LogProgress {
            work,
            last: Mutex::new(None),
        }
    }

    /// Records that `done` of `total` units of `stage` are done.
    pub fn report(&self, stage: &str, done: u64, total: u64, loss: Option<f64>) {
        let ratio = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        metrics::gauge!("reco_work_progress_ratio", "work" => self.work).set(ratio);
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let due = match &*last {
            Some((s, at)) => s != stage || at.elapsed() >= PROGRESS_EVERY,
            None => true,
        };
        if !(due || done >= total) {
            return;
        }
        *last = Some((stage.to_string(), Instant::now()));
        match loss {
            Some(l) => tracing::info!(work = self.work, stage, done, total, loss = l, "progress"),
            None => tracing::info!(work = self.work, stage, done, total, "progress"),
        }
    }
}
