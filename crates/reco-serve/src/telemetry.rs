//! Prometheus metrics: one recorder per process (installed on first use), rendered by
//! `/metrics`.

use std::sync::OnceLock;

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
