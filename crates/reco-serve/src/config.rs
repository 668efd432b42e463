//! `serve.toml`: where to listen, which database, which model, how to retrain, keys and limits.
//! Every field has a default, so an empty file (or none, with `--demo`) is a working server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, ServeError};

/// The server's configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:8080`).
    pub listen: String,
    /// Database URL: `sqlite://FILE` (created if missing) or `postgres://user@host:port/db`.
    pub database: String,
    /// Directory of the model artifacts; default: `models/` beside an SQLite file, or
    /// `reco-models/` in the working directory for PostgreSQL.
    pub artifacts: Option<PathBuf>,
    /// The model to train: a JSON object, or the path of a model or pipeline file.
    pub model: ModelSource,
    /// Event types and how events become training values.
    pub feedback: FeedbackConfig,
    /// When to retrain and when to promote.
    pub retrain: RetrainConfig,
    /// API keys.
    pub keys: Keys,
    /// Request limits.
    pub limits: Limits,
    /// New items (not yet in the model) in personal results.
    pub cold_items: ColdItems,
    /// Following other replicas that share the database.
    pub replicas: Replicas,
    /// Logging the lists served, and which events count as their outcomes.
    pub impressions: Impressions,
    /// Online experiments between model versions.
    pub experiments: Experiments,
    /// How long events and impressions are kept.
    pub retention: Retention,
    /// Drift of incoming events against the active version's training data.
    pub drift: Drift,
    /// Quality and bias of the lists served, and the thresholds that raise alerts.
    pub monitoring: Monitoring,
}

/// Quality monitoring (docs/serve.md): click-through, coverage, popularity lift, exposure and
/// click-through by user group over the latest window, exported as gauges, with alerts. A
/// threshold left out is no alert.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Monitoring {
    /// Seconds between refreshes of the quality and drift gauges and alerts (0: only when
    /// asked over HTTP).
    pub check_seconds: u64,
    /// The latest window the gauges and alerts describe, seconds.
    pub window_seconds: u64,
    /// The user field whose values are the user groups (default: activity bands).
    pub group_field: Option<String>,
    /// Lists the window needs before an alert can fire; also the least a user group needs to
    /// count in `group_gap`.
    pub min_impressions: u64,
    /// Alert when click-through (share of lists with a click) is below.
    pub min_ctr: Option<f64>,
    /// Alert when catalogue coverage is below.
    pub min_coverage: Option<f64>,
    /// Alert when popularity lift is above.
    pub max_popularity_lift: Option<f64>,
    /// Alert when the head items' share of exposure is above.
    pub max_head_exposure: Option<f64>,
    /// Alert when the relative click-through gap between user groups, 1 − worst / best, is
    /// above.
    pub max_group_gap: Option<f64>,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            check_seconds: 60,
            window_seconds: 3600,
            group_field: None,
            min_impressions: 200,
            min_ctr: None,
            min_coverage: None,
            max_popularity_lift: None,
            max_head_exposure: None,
            max_group_gap: None,
        }
    }
}

/// Drift monitoring (docs/serve.md): the last `window` positive events against the training
/// events of the active version.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Drift {
    /// Positive events compared (0 turns drift monitoring off).
    pub window: usize,
    /// Population stability index above which a field marks the version stale.
    pub threshold: f64,
    /// Events the window needs before it can mark the version stale.
    pub min_events: usize,
}

impl Default for Drift {
    fn default() -> Self {
        Drift {
            window: 5000,
            threshold: 0.2,
            min_events: 1000,
        }
    }
}

/// Retention: events and impressions older than a number of days are deleted on a schedule.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Keep events and impressions this many days (by their time); 0 keeps everything.
    pub days: u64,
    /// Seconds between deletion runs.
    pub every_seconds: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: 0,
            every_seconds: 3600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database: "sqlite://reco.db".into(),
            artifacts: None,
            model: ModelSource::default(),
            feedback: FeedbackConfig::default(),
            retrain: RetrainConfig::default(),
            keys: Keys::default(),
            limits: Limits::default(),
            cold_items: ColdItems::default(),
            replicas: Replicas::default(),
            impressions: Impressions::default(),
            experiments: Experiments::default(),
            retention: Retention::default(),
            drift: Drift::default(),
            monitoring: Monitoring::default(),
        }
    }
}

/// Impression logging: every list served is written (batched, in the background) with its
/// response id, user, model version, experiment arm and items in position order.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Impressions {
    /// Log impressions.
    pub enabled: bool,
    /// Impressions waiting to be written; beyond it new ones are dropped (and counted in
    /// `reco_impressions_dropped_total`), never delaying a request.
    pub queue: usize,
    /// Milliseconds a batch of impressions waits for more before it is written.
    pub flush_ms: u64,
    /// Event types that count as a click on a shown item.
    pub click_types: Vec<String>,
    /// Event types that count as a conversion.
    pub conversion_types: Vec<String>,
    /// Most impressions read to compute one set of results.
    pub max_scan: i64,
}

impl Default for Impressions {
    fn default() -> Self {
        Impressions {
            enabled: true,
            queue: 100_000,
            flush_ms: 500,
            click_types: ["click", "view", "like", "cart", "purchase", "rating"]
                .map(String::from)
                .to_vec(),
            conversion_types: vec!["purchase".into()],
            max_scan: 5_000_000,
        }
    }
}

/// Online experiments.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Experiments {
    /// Seconds between guard-rail checks of the running experiment (0: only when its results
    /// are asked for).
    pub check_seconds: u64,
    /// Standard deviation of the click-through differences the sequential test is tuned for
    /// (its mixing distribution): smaller finds small effects sooner and large ones later.
    pub effect_sd: f64,
}

impl Default for Experiments {
    fn default() -> Self {
        Experiments {
            check_seconds: 60,
            effect_sd: 0.02,
        }
    }
}

/// Several servers on one PostgreSQL database: each polls the database for what the others
/// wrote (events, forgotten users, item metadata, the active version).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Replicas {
    /// Milliseconds between polls; absent: 1000 with PostgreSQL, off with SQLite (one process
    /// owns an SQLite file); 0: off.
    pub poll_ms: Option<u64>,
}

/// Where the model specification comes from.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ModelSource {
    /// A path to a model file (JSON or TOML) or a pipeline file.
    File(PathBuf),
    /// The specification itself.
    Inline(serde_json::Value),
}

impl Default for ModelSource {
    fn default() -> Self {
        ModelSource::Inline(serde_json::json!({
            "model": "ials", "factors": 64, "epochs": 15, "regularization": 0.05, "alpha": 2.0
        }))
    }
}

/// How events are typed and weighted.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackConfig {
    /// Weight of each event type; an event's value is its weight times its `value` (1 when
    /// absent). A negative weight makes the type negative feedback: the item leaves the user's
    /// results at once and the pair's summed value counts against it in training.
    pub types: BTreeMap<String, f32>,
    /// How the events of one (user, item) pair become one training value: `sum` (implicit
    /// signals) or `last`, `first`, `max`, `mean` (ratings).
    pub merge: String,
    /// `implicit` (weights of signals) or `explicit` (ratings; rating models apply).
    pub kind: String,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        let types = [
            ("view", 1.0),
            ("click", 1.0),
            ("rating", 1.0),
            ("like", 3.0),
            ("cart", 3.0),
            ("purchase", 5.0),
            ("skip", -1.0),
            ("dislike", -3.0),
            ("hide", -10.0),
        ];
        FeedbackConfig {
            types: types.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            merge: "sum".into(),
            kind: "implicit".into(),
        }
    }
}

/// Retraining policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrainConfig {
    /// Train a first model at start when the store has events and no version is kept.
    pub on_start: bool,
    /// Retrain after this many new events (0: never by count).
    pub after_events: u64,
    /// Retrain at least this often, in seconds, when there are new events (0: never by time).
    pub every_seconds: u64,
    /// The metric compared on the recent hold-out (`ndcg@10`, `recall@20`, …).
    pub metric: String,
    /// Promote the new model only if its metric is at least the active one's minus this
    /// (0: not worse; a negative value demands an improvement; `inf` promotes always).
    pub tolerance: f64,
    /// Users sampled for the hold-out comparison (their latest event each; 0: all).
    pub holdout_users: usize,
    /// Model versions whose artifacts are kept for rollback (the active one included).
    pub keep_versions: usize,
    /// Seed of training and of the hold-out sample.
    pub seed: u64,
}

impl Default for RetrainConfig {
    fn default() -> Self {
        RetrainConfig {
            on_start: true,
            after_events: 10_000,
            every_seconds: 0,
            metric: "ndcg@10".into(),
            tolerance: 0.0,
            holdout_users: 10_000,
            keep_versions: 5,
            seed: 42,
        }
    }
}

/// API keys. Without a write key, write and admin routes are open (the demo); set one for any
/// server other processes can reach.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keys {
    /// Key for writes (feedback, users, items) and admin routes (models).
    pub write: Option<String>,
    /// Key for reads (recommendations, lookups); open when absent.
    pub read: Option<String>,
}

impl std::fmt::Debug for Keys {
    // Keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |k: &Option<String>| if k.is_some() { "set" } else { "unset" };
        write!(
            f,
            "Keys {{ write: {}, read: {} }}",
            set(&self.write),
            set(&self.read)
        )
    }
}

/// Request limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Largest `n` (and `offset + n`) of a recommendation.
    pub max_n: usize,
    /// Most events in one feedback batch (and items in one upsert).
    pub max_batch: usize,
    /// Longest id (user, item, event type, idempotency key), bytes.
    pub max_id_bytes: usize,
    /// Request timeout, milliseconds.
    pub timeout_ms: u64,
    /// Users whose live state (events since the model was trained) is kept in memory; the
    /// least recently active are evicted beyond it and read back from the database when needed.
    pub live_users: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 2 << 20,
            max_n: 1000,
            max_batch: 10_000,
            max_id_bytes: 256,
            timeout_ms: 10_000,
            live_users: 1_000_000,
        }
    }
}

/// Items added after the active model was trained.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColdItems {
    /// Largest share of a personal list given to new items that share categories with the
    /// user's history (0 turns them off).
    pub share: f64,
}

impl Default for ColdItems {
    fn default() -> Self {
        ColdItems { share: 0.2 }
    }
}

impl Config {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let bytes = reco_core::input::read(path, reco_core::input::MAX_SPEC_BYTES)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ServeError::Config(format!("{} is not UTF-8 text", path.display())))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks the values serde cannot: ranges, names, the merge policy.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(ServeError::Config(m));
        if !self.database.starts_with("sqlite:") && !self.database.starts_with("postgres") {
            return bad(format!(
                "database {:?}: use sqlite://FILE or postgres://USER@HOST:PORT/DB",
                self.database
            ));
        }
        self.merge_policy()?;
        self.feedback_kind()?;
        if self.feedback.types.is_empty() {
            return bad("feedback.types is empty: name at least one event type".into());
        }
        for (t, w) in &self.feedback.types {
            if !w.is_finite() || *w == 0.0 {
                return bad(format!(
                    "feedback.types.{t} = {w}: a weight is finite and not 0"
                ));
            }
            if t.is_empty() || t.len() > self.limits.max_id_bytes {
                return bad(format!(
                    "event type {t:?}: 1 to {} bytes",
                    self.limits.max_id_bytes
                ));
            }
        }
        self.gate_metric()?;
        let imp = &self.impressions;
        if imp.queue == 0 || imp.queue > 10_000_000 {
            return bad(format!("impressions.queue = {}: 1 to 10000000", imp.queue));
        }
        if imp.flush_ms > 60_000 {
            return bad(format!(
                "impressions.flush_ms = {}: at most 60000",
                imp.flush_ms
            ));
        }
        if imp.max_scan < 1 {
            return bad(format!(
                "impressions.max_scan = {}: at least 1",
                imp.max_scan
            ));
        }
        for t in imp.click_types.iter().chain(&imp.conversion_types) {
            if !self.feedback.types.contains_key(t)
                && !Impressions::default().click_types.contains(t)
            {
                return bad(format!(
                    "impressions: event type {t:?} is not in feedback.types"
                ));
            }
        }
        if self.retention.days > 100_000 {
            return bad(format!(
                "retention.days = {}: at most 100000",
                self.retention.days
            ));
        }
        if self.retention.days > 0 && self.retention.every_seconds == 0 {
            return bad(
                "retention.every_seconds must be at least 1 when retention.days is set".into(),
            );
        }
        let d = &self.drift;
        if d.window > 10_000_000 || !(d.threshold > 0.0 && d.threshold.is_finite()) {
            return bad(format!(
                "drift: window {} (at most 10000000), threshold {} (a number > 0)",
                d.window, d.threshold
            ));
        }
        let m = &self.monitoring;
        if m.window_seconds == 0 || m.window_seconds > 366 * 86_400 {
            return bad(format!(
                "monitoring.window_seconds = {}: 1 to 31622400 (a year)",
                m.window_seconds
            ));
        }
        for (name, t) in [
            ("min_ctr", m.min_ctr),
            ("min_coverage", m.min_coverage),
            ("max_head_exposure", m.max_head_exposure),
            ("max_group_gap", m.max_group_gap),
        ] {
            if let Some(t) = t.filter(|t| !(0.0..=1.0).contains(t)) {
                return bad(format!("monitoring.{name} = {t}: a share, in [0, 1]"));
            }
        }
        if let Some(t) = m
            .max_popularity_lift
            .filter(|t| !t.is_finite() || *t < -1.0)
        {
            return bad(format!(
                "monitoring.max_popularity_lift = {t}: a number of at least -1"
            ));
        }
        let e = self.experiments.effect_sd;
        if !(e > 0.0 && e < 1.0) {
            return bad(format!("experiments.effect_sd = {e}: in (0, 1)"));
        }
        if self.retrain.tolerance.is_nan() {
            return bad("retrain.tolerance is NaN".into());
        }
        if self.retrain.keep_versions == 0 {
            return bad("retrain.keep_versions must be at least 1 (the active model)".into());
        }
        let l = &self.limits;
        if l.max_n == 0 || l.max_n > 100_000 {
            return bad(format!("limits.max_n = {}: 1 to 100000", l.max_n));
        }
        if l.max_batch == 0 || l.max_batch > 1_000_000 {
            return bad(format!("limits.max_batch = {}: 1 to 1000000", l.max_batch));
        }
        if l.max_body_bytes < 1024 || l.max_body_bytes > 1 << 30 {
            return bad(format!(
                "limits.max_body_bytes = {}: 1 KiB to 1 GiB",
                l.max_body_bytes
            ));
        }
        if l.max_id_bytes == 0 || l.max_id_bytes > 4096 {
            return bad(format!(
                "limits.max_id_bytes = {}: 1 to 4096",
                l.max_id_bytes
            ));
        }
        if l.timeout_ms == 0 {
            return bad("limits.timeout_ms must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.cold_items.share) {
            return bad(format!(
                "cold_items.share = {}: 0 to 1",
                self.cold_items.share
            ));
        }
        for k in [&self.keys.write, &self.keys.read].into_iter().flatten() {
            if k.len() < 16 {
                return bad("an API key has at least 16 characters".into());
            }
        }
        Ok(())
    }

    /// The duplicate policy that merges a pair's events.
    pub fn merge_policy(&self) -> Result<reco_core::DuplicatePolicy> {
        self.feedback
            .merge
            .parse()
            .map_err(|e: reco_core::Error| ServeError::Config(format!("feedback.merge: {e}")))
    }

    /// Implicit or explicit feedback.
    pub fn feedback_kind(&self) -> Result<reco_core::Feedback> {
        match self.feedback.kind.as_str() {
            "implicit" => Ok(reco_core::Feedback::Implicit),
            "explicit" => Ok(reco_core::Feedback::Explicit),
            k => Err(ServeError::Config(format!(
                "feedback.kind = {k:?}: implicit or explicit"
            ))),
        }
    }

    /// The metric of the promotion gate.
    pub fn gate_metric(&self) -> Result<reco_eval::Metric> {
        self.retrain
            .metric
            .parse()
            .map_err(|e: String| ServeError::Config(format!("retrain.metric: {e}")))
    }

    /// Milliseconds between polls of the database for other replicas' writes (0: none).
    pub fn poll_ms(&self) -> u64 {
        self.replicas
            .poll_ms
            .unwrap_or(if self.database.starts_with("sqlite:") {
                0
            } else {
                1000
            })
    }

    /// Where artifacts go.
    pub fn artifact_dir(&self) -> PathBuf {
        if let Some(d) = &self.artifacts {
            return d.clone();
        }
        match self.database.strip_prefix("sqlite://") {
            Some(file) => {
                let file = Path::new(file.split('?').next().unwrap_or(file));
                let parent = file.parent().unwrap_or(Path::new(""));
                let stem = file
                    .file_stem()
                    .map_or("reco".into(), |s| s.to_string_lossy());
                parent.join(format!("{stem}-models"))
            }
            None => PathBuf::from("reco-models"),
        }
    }
}
