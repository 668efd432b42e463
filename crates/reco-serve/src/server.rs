//! The server's shared state and its life: start-up (store, catalogue, live state, the active
//! version), the writer that commits feedback in groups, retraining with its promotion gate,
//! activation (an atomic swap) and rollback.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use reco_core::Dataset;
use reco_models::ModelSpec;
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::engine::Active;
use crate::error::{Result, ServeError};
use crate::live::{Live, LiveEvent, Lookup, UserLive};
use crate::store::{now, Batch, BatchOutcome, NewEvent, Store, VersionRow};
use crate::trainer;

/// Most batches committed in one transaction by the writer.
const GROUP_BATCHES: usize = 256;
/// Most events committed in one transaction by the writer (a single batch may exceed it).
const GROUP_EVENTS: usize = 20_000;

/// A feedback batch waiting for its commit.
struct WriteJob {
    batch: Batch,
    reply: oneshot::Sender<Result<BatchOutcome>>,
}

/// Everything the handlers share.
pub struct Shared {
    /// Configuration.
    pub cfg: Config,
    /// The database.
    pub store: Store,
    /// The model to train.
    pub spec: ModelSpec,
    /// Known items.
    pub catalog: RwLock<Catalog>,
    /// Users' events since the active model.
    pub live: Mutex<Live>,
    active: RwLock<Option<Arc<Active>>>,
    /// Forgotten users (digest → forget clock).
    forgotten: RwLock<FxHashMap<String, i64>>,
    writer: mpsc::Sender<WriteJob>,
    training: AtomicBool,
    since_train: AtomicU64,
    /// Where artifacts are written.
    pub artifacts: PathBuf,
    /// Negative event types.
    pub negative: Vec<String>,
    /// Positive event types.
    pub positive: Vec<String>,
    /// Events applied to the live state lately, so that polling applies others' events once.
    applied: Mutex<Applied>,
    /// Held by the writer from a commit until its events are recorded and applied, and by a
    /// poll while it reads: a poll never sees a commit whose events are not recorded yet.
    apply_gate: tokio::sync::Mutex<()>,
    /// One activation at a time.
    activation: tokio::sync::Mutex<()>,
    /// The impression log.
    pub impressions: crate::impressions::ImpressionLog,
    /// The running experiment, with its arms' models.
    experiment: RwLock<Option<Arc<crate::online::Running>>>,
    /// The newest event sequence number this replica knows committed: impressions record it,
    /// so that the events citing them are found above it.
    committed: AtomicI64,
    /// Users who opted out of personalisation.
    opted_out: RwLock<rustc_hash::FxHashSet<String>>,
    /// The opt-out log's position this replica has applied (polling).
    opt_out_seq: AtomicI64,
    /// The last positive events, for drift.
    drift_window: Mutex<crate::drift::Window>,
    /// The training distributions of the active version (computed when first asked for).
    drift_reference: Mutex<Option<(i64, Arc<crate::drift::Reference>)>>,
}

/// How far below the newest applied sequence number a poll looks again: a transaction of
/// another replica may commit after later ones became visible.
const LOOKBACK: i64 = 1000;

/// Sequence numbers applied to the live state (this replica's commits and polled ones).
#[derive(Debug, Default)]
struct Applied {
    /// Everything at or below was read at start.
    start: i64,
    /// The largest number a poll has read: the next poll starts `LOOKBACK` below it.
    polled: i64,
    /// Applied numbers above `polled - LOOKBACK`.
    seqs: std::collections::BTreeSet<i64>,
}

impl Applied {
    fn record(&mut self, seqs: &[i64]) {
        self.seqs.extend(seqs.iter().copied());
    }

    fn polled(&mut self, max: i64) {
        self.polled = self.polled.max(max);
        let low = self.polled - LOOKBACK;
        self.seqs = self.seqs.split_off(&low);
    }
}

/// The handle the routes get.
pub type AppState = Arc<Shared>;

impl Shared {
    /// The active version, if any.
    pub fn active(&self) -> Option<Arc<Active>> {
        self.active.read().map_or(None, |a| a.clone())
    }

    /// The running experiment, if any.
    pub fn experiment(&self) -> Option<Arc<crate::online::Running>> {
        self.experiment.read().map_or(None, |e| e.clone())
    }

    /// Replaces the running experiment.
    pub fn set_experiment(&self, e: Option<Arc<crate::online::Running>>) {
        if let Ok(mut x) = self.experiment.write() {
            *x = e;
        }
    }

    /// Whether `user` opted out of personalisation.
    pub fn opted_out(&self, user: &str) -> bool {
        self.opted_out.read().is_ok_and(|o| o.contains(user))
    }

    /// Records a user's opt-out (or opt-in) in the database, then in memory.
    pub async fn set_opt_out(&self, user: &str, opt_out: bool) -> Result<()> {
        self.store.set_opt_out(user, opt_out).await?;
        if let Ok(mut o) = self.opted_out.write() {
            if opt_out {
                o.insert(user.to_string());
            } else {
                o.remove(user);
            }
        }
        Ok(())
    }

    /// Applies the opt-outs and opt-ins other replicas recorded since the last call.
    pub async fn follow_opt_outs(&self) -> Result<()> {
        let after = self.opt_out_seq.load(Ordering::Acquire);
        let changes = self.store.opt_out_changes(after).await?;
        let Some(last) = changes.last().map(|c| c.0) else {
            return Ok(());
        };
        if let Ok(mut o) = self.opted_out.write() {
            for (_, user, out) in changes {
                if out {
                    o.insert(user);
                } else {
                    o.remove(&user);
                }
            }
        }
        self.opt_out_seq.fetch_max(last, Ordering::AcqRel);
        Ok(())
    }

    /// Deletes events and impressions older than `retention.days`; returns how many of each.
    pub async fn apply_retention(&self) -> Result<(u64, u64)> {
        let days = self.cfg.retention.days;
        if days == 0 {
            return Ok((0, 0));
        }
        let cut =
            now().saturating_sub(i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX));
        let (events, impressions) = self.store.delete_before(cut).await?;
        metrics::counter!("reco_retention_events_deleted_total").increment(events);
        metrics::counter!("reco_retention_impressions_deleted_total").increment(impressions);
        if events + impressions > 0 {
            tracing::info!(events, impressions, days, "retention: deleted old data");
        }
        Ok((events, impressions))
    }

    /// Drift of the recent events against the active version; sets the drift gauges.
    pub fn drift(&self) -> Result<crate::drift::DriftReport> {
        let active = self.active();
        let reference = match &active {
            Some(a) => {
                let mut slot = self
                    .drift_reference
                    .lock()
                    .map_err(|_| ServeError::Storage("drift lock poisoned".into()))?;
                match slot.as_ref().filter(|(v, _)| *v == a.version) {
                    Some((_, r)) => Some(r.clone()),
                    None => {
                        let r = Arc::new(crate::drift::Reference::of(a, &*self.catalog_read()?));
                        *slot = Some((a.version, r.clone()));
                        Some(r)
                    }
                }
            }
            None => None,
        };
        let window = self
            .drift_window
            .lock()
            .map_err(|_| ServeError::Storage("drift lock poisoned".into()))?;
        let d = &self.cfg.drift;
        let report = crate::drift::report(
            active.as_deref(),
            reference.as_deref(),
            &window,
            &*self.catalog_read()?,
            d.threshold,
            d.min_events,
        );
        for f in &report.fields {
            metrics::gauge!("reco_drift_psi", "field" => f.field.clone()).set(f.psi);
        }
        metrics::gauge!("reco_model_stale").set(if report.stale { 1.0 } else { 0.0 });
        Ok(report)
    }

    fn observe_drift(&self, items: impl IntoIterator<Item = crate::drift::Seen>) {
        if let Ok(mut w) = self.drift_window.lock() {
            for i in items {
                w.push(i);
            }
        }
    }

    /// The newest committed event sequence number known here.
    pub fn committed(&self) -> i64 {
        self.committed.load(Ordering::Acquire)
    }

    fn note_committed(&self, seqs: &[i64]) {
        if let Some(&m) = seqs.iter().max() {
            self.committed.fetch_max(m, Ordering::AcqRel);
        }
    }

    /// True when a model answers.
    pub fn ready(&self) -> bool {
        self.active().is_some()
    }

    /// True when `user` was forgotten after `active` was trained, so its memory of them must
    /// not be used.
    pub fn masked(&self, user: &str, active: Option<&Active>) -> bool {
        let Some(a) = active else { return false };
        let f = match self.forgotten.read() {
            Ok(f) => f,
            Err(_) => return true,
        };
        if f.is_empty() {
            return false;
        }
        f.get(&crate::store::digest(user))
            .is_some_and(|&clock| clock > a.forget_clock)
    }

    /// The live state of a user, read from the database when it was evicted.
    pub async fn user_live(&self, user: &str) -> Result<UserLive> {
        let ticket = match self.lock_live()?.get(user) {
            Lookup::Found(s) => {
                metrics::counter!("reco_live_cache_hits_total").increment(1);
                return Ok(s);
            }
            Lookup::Unknown(t) => t,
        };
        metrics::counter!("reco_live_cache_misses_total").increment(1);
        let floor = self.lock_live()?.floor();
        let events = self.store.user_events_after(user, floor).await?;
        let hidden = self.store.hidden(&self.negative, Some(user)).await?;
        let mut state = UserLive::default();
        {
            let mut cat = self.catalog_write()?;
            for e in &events {
                if let Some(w) = self.cfg.feedback.types.get(&e.kind) {
                    let item = cat.intern(&e.item, e.timestamp);
                    state.recent.push(LiveEvent {
                        item,
                        weight: (f64::from(*w) * e.value) as f32,
                        seq: e.seq,
                    });
                }
            }
            state.hidden = hidden.iter().map(|(_, i)| cat.intern(i, 0)).collect();
            state.hidden.sort_unstable();
            state.hidden.dedup();
        }
        self.lock_live()?.insert(user, state.clone(), ticket);
        Ok(state)
    }

    /// The live state, locked.
    pub fn lock_live(&self) -> Result<std::sync::MutexGuard<'_, Live>> {
        self.live
            .lock()
            .map_err(|_| ServeError::Storage("live state lock poisoned".into()))
    }

    /// The catalogue for reading.
    pub fn catalog_read(&self) -> Result<std::sync::RwLockReadGuard<'_, Catalog>> {
        self.catalog
            .read()
            .map_err(|_| ServeError::Storage("catalogue lock poisoned".into()))
    }

    /// The catalogue for writing.
    pub fn catalog_write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Catalog>> {
        self.catalog
            .write()
            .map_err(|_| ServeError::Storage("catalogue lock poisoned".into()))
    }

    /// Commits a feedback batch (grouped with concurrent ones) and answers once it is durable
    /// and visible to the next recommendation.
    pub async fn ingest(&self, batch: Batch) -> Result<BatchOutcome> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(WriteJob { batch, reply })
            .await
            .map_err(|_| ServeError::NotReady("the server is shutting down".into()))?;
        rx.await
            .map_err(|_| ServeError::Storage("the writer stopped before committing".into()))?
    }

    /// Forgets a user: their events deleted, live state gone, old versions never serve them.
    /// Runs to the end even if the request is dropped (the caller awaits a spawned task).
    pub async fn forget(self: &Arc<Self>, user: &str) -> Result<bool> {
        let me = self.clone();
        let user = user.to_string();
        tokio::spawn(async move { me.forget_now(&user).await })
            .await
            .map_err(|e| ServeError::Storage(format!("forgetting task failed: {e}")))?
    }

    async fn forget_now(&self, user: &str) -> Result<bool> {
        let Some((events, clock)) = self.store.forget_user(user).await? else {
            return Ok(false);
        };
        // Queued impressions first, so that none of theirs is written after the rewrite.
        self.impressions.flush().await;
        self.store.forget_impressions(user).await?;
        if let Ok(mut o) = self.opted_out.write() {
            o.remove(user);
        }
        if let Ok(mut f) = self.forgotten.write() {
            f.insert(crate::store::digest(user), clock);
        }
        let deleted_through = events.iter().map(|e| e.seq).max().unwrap_or(0);
        self.lock_live()?.forget(user, deleted_through);
        let mut cat = self.catalog_write()?;
        for e in &events {
            if self.positive.contains(&e.kind) {
                if let Some(i) = cat.get(&e.item) {
                    cat.add_popularity(i, -1.0);
                }
            }
        }
        Ok(true)
    }

    /// Follows what other replicas wrote to the shared database: their events (into the live
    /// state), forgotten users, item metadata, and the version they activated.
    async fn poll(self: &Arc<Self>, since: i64) -> Result<()> {
        let gate = self.apply_gate.lock().await;
        let from = {
            let a = self
                .applied
                .lock()
                .map_err(|_| ServeError::Storage("poisoned".into()))?;
            (a.polled - LOOKBACK).max(a.start)
        };
        let rows = self.store.events_between(from, i64::MAX, 10_000).await?;
        if !rows.is_empty() {
            let fresh: Vec<&crate::store::EventRow> = {
                let mut a = self
                    .applied
                    .lock()
                    .map_err(|_| ServeError::Storage("poisoned".into()))?;
                let fresh = rows
                    .iter()
                    .filter(|r| r.seq > a.start && !a.seqs.contains(&r.seq))
                    .collect();
                let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
                self.note_committed(&seqs);
                a.record(&seqs);
                a.polled(seqs.iter().copied().max().unwrap_or(from));
                fresh
            };
            let n = fresh.len() as u64;
            let mut polled_positive = Vec::new();
            let mut cat = self.catalog_write()?;
            let mut live = self.lock_live()?;
            for r in fresh {
                let Some(&w) = self.cfg.feedback.types.get(&r.kind) else {
                    continue;
                };
                let item = cat.intern(&r.item, r.timestamp);
                let weight = (f64::from(w) * r.value) as f32;
                if w > 0.0 {
                    cat.add_popularity(item, 1.0);
                    polled_positive.push(crate::drift::Seen::new(item, &r.user, weight));
                }
                live.apply(
                    &r.user,
                    LiveEvent {
                        item,
                        weight,
                        seq: r.seq,
                    },
                );
            }
            drop(live);
            drop(cat);
            self.observe_drift(polled_positive);
            if n > 0 {
                self.since_train.fetch_add(n, Ordering::AcqRel);
            }
        }
        drop(gate);
        let forgotten = self.store.forgotten(since).await?;
        if !forgotten.is_empty() {
            let digests: FxHashMap<String, i64> = forgotten.into_iter().collect();
            if let Ok(mut f) = self.forgotten.write() {
                f.extend(digests.iter().map(|(k, v)| (k.clone(), *v)));
            }
            self.lock_live()?
                .retain(|user| !digests.contains_key(&crate::store::digest(user)));
        }
        let items = self.store.items_updated_since(since).await?;
        if !items.is_empty() {
            let mut cat = self.catalog_write()?;
            let t = now();
            for r in &items {
                cat.upsert(r, t);
            }
        }
        let theirs = self.store.active_version().await?;
        let ours = self.active().map(|a| a.version);
        if let (Some(v), true) = (theirs, theirs != ours) {
            if let Some(row) = self
                .store
                .versions()
                .await?
                .into_iter()
                .find(|r| r.version == v)
            {
                self.activate(&row, None).await?;
            }
        }
        Ok(())
    }

    /// Applies committed events to the catalogue and the live state.
    fn apply(&self, batch: &Batch, last_seq: i64) -> Result<()> {
        let mut cat = self.catalog_write()?;
        let mut live = self.lock_live()?;
        let mut positive = Vec::new();
        for e in &batch.events {
            let Some(&w) = self.cfg.feedback.types.get(&e.kind) else {
                continue;
            };
            let item = cat.intern(&e.item, e.timestamp);
            let weight = (f64::from(w) * e.value) as f32;
            if w > 0.0 {
                cat.add_popularity(item, 1.0);
                positive.push(crate::drift::Seen::new(item, &e.user, weight));
            }
            live.apply(
                &e.user,
                LiveEvent {
                    item,
                    weight,
                    seq: last_seq,
                },
            );
        }
        drop(live);
        drop(cat);
        self.observe_drift(positive);
        Ok(())
    }

    /// Makes a version active: loads its artifact, swaps it in (requests in flight finish on
    /// the old one), moves the live state's floor.
    /// `message` is recorded with the activation in the database; `None` only follows an
    /// activation another replica recorded.
    pub async fn activate(self: &Arc<Self>, v: &VersionRow, message: Option<&str>) -> Result<()> {
        // Spawned so that a dropped request cannot stop it between the database and memory;
        // serialised so that the database, the pointer and the live floor agree.
        let me = self.clone();
        let v = v.clone();
        let message = message.map(str::to_string);
        tokio::spawn(async move {
            let _one = me.activation.lock().await;
            me.activate_now(&v, message.as_deref()).await
        })
        .await
        .map_err(|e| ServeError::Storage(format!("activation task failed: {e}")))?
    }

    /// Loads a version's artifact as a servable model (its items entered in the catalogue).
    pub async fn load_version(&self, v: &VersionRow) -> Result<Active> {
        let path = PathBuf::from(&v.artifact);
        let loaded = tokio::task::spawn_blocking(move || trainer::load(&path))
            .await
            .map_err(|e| ServeError::Storage(format!("loading task failed: {e}")))??;
        let mut cat = self.catalog_write()?;
        Active::new(
            v.version,
            v.trained_through,
            v.forget_clock,
            loaded,
            &mut cat,
        )
    }

    async fn activate_now(self: &Arc<Self>, v: &VersionRow, message: Option<&str>) -> Result<()> {
        let active = self.load_version(v).await?;
        if let Some(message) = message {
            self.store.activate(v.version, message).await?;
        }
        let floor = v.trained_through;
        let moved = self.lock_live()?.advance(floor);
        if !moved {
            let (users, through) = self.read_live(floor).await?;
            self.lock_live()?.reset(floor, users, through);
        }
        if let Ok(mut a) = self.active.write() {
            *a = Some(Arc::new(active));
        }
        metrics::gauge!("reco_model_version").set(v.version as f64);
        if let Some(obj) = v.metrics.get("candidate").and_then(|c| c.as_object()) {
            for (name, s) in obj {
                if let Some(mean) = s.get("mean").and_then(|m| m.as_f64()) {
                    metrics::gauge!("reco_model_offline_metric", "metric" => name.clone())
                        .set(mean);
                }
            }
        }
        tracing::info!(version = v.version, "model version active");
        Ok(())
    }

    /// Reads the live state above `floor` from the database, up to the sequence number it
    /// returns.
    async fn read_live(&self, floor: i64) -> Result<(FxHashMap<String, UserLive>, i64)> {
        let through = self.store.max_seq().await?;
        let mut users: FxHashMap<String, UserLive> = FxHashMap::default();
        let mut after = floor;
        loop {
            let rows = self.store.events_between(after, through, 100_000).await?;
            let Some(end) = rows.last().map(|r| r.seq) else {
                break;
            };
            let mut cat = self.catalog_write()?;
            for e in &rows {
                if let Some(&w) = self.cfg.feedback.types.get(&e.kind) {
                    let item = cat.intern(&e.item, e.timestamp);
                    users
                        .entry(e.user.clone())
                        .or_default()
                        .recent
                        .push(LiveEvent {
                            item,
                            weight: (f64::from(w) * e.value) as f32,
                            seq: e.seq,
                        });
                }
            }
            after = end;
        }
        let hidden = self.store.hidden(&self.negative, None).await?;
        let mut cat = self.catalog_write()?;
        for (u, i) in hidden {
            let item = cat.intern(&i, 0);
            users.entry(u).or_default().hidden.push(item);
        }
        for u in users.values_mut() {
            u.hidden.sort_unstable();
            u.hidden.dedup();
        }
        Ok((users, through))
    }

    /// Retrains now (if no training runs), promotes if the gate passes, and returns the new
    /// version's row.
    pub async fn retrain(self: &Arc<Self>, reason: &str) -> Result<VersionRow> {
        if self
            .training
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(ServeError::Conflict("a training run is in progress".into()));
        }
        /// Clears the training flag however the run ends.
        struct Running(Arc<Shared>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.training.store(false, Ordering::Release);
            }
        }
        let guard = Running(self.clone());
        let me = self.clone();
        let reason = reason.to_string();
        // Spawned: a client that gives up (or the request timeout) does not stop the run.
        let result = tokio::spawn(async move {
            let _running = guard;
            me.retrain_locked(&reason).await
        })
        .await
        .map_err(|e| ServeError::Storage(format!("training task failed: {e}")))?;
        if let Err(e) = &result {
            tracing::warn!(error = %e, "training failed");
        }
        result
    }

    async fn retrain_locked(self: &Arc<Self>, reason: &str) -> Result<VersionRow> {
        let counted = self.since_train.swap(0, Ordering::AcqRel);
        let result = self.train_and_promote(reason).await;
        if result.is_err() {
            // The events still wait to be learnt: the next trigger counts them.
            self.since_train.fetch_add(counted, Ordering::AcqRel);
        }
        result
    }

    async fn train_and_promote(self: &Arc<Self>, reason: &str) -> Result<VersionRow> {
        tracing::info!(reason, "training: reading the events");
        let read_started = Instant::now();
        let data = trainer::read_dataset(&self.store, &self.cfg).await?;
        let version = self.store.next_version().await?;
        tracing::info!(
            version,
            users = data.dataset.n_users(),
            items = data.dataset.n_items(),
            interactions = data.dataset.interactions.nnz(),
            seconds = read_started.elapsed().as_secs_f64(),
            "training: events read"
        );
        let active = self.active();
        let spec = self.spec.clone();
        let cfg = self.cfg.clone();
        let dir = self.artifacts.clone();
        let started = Instant::now();
        let job = tokio::task::spawn_blocking(move || {
            let log = crate::telemetry::LogProgress::new("training");
            let report = |p: reco_core::model::Progress<'_>| {
                log.report(p.stage, p.done, p.total, p.loss);
            };
            let t = trainer::train(&spec, &data, active, &cfg, &report)?;
            let path = match &t.model {
                Some(m) => Some(trainer::save(m.as_ref(), &data, &dir, version)?),
                None => None,
            };
            Ok::<_, ServeError>((t, path, data))
        });
        let (t, path, data) = job
            .await
            .map_err(|e| ServeError::Storage(format!("training task failed: {e}")))??;
        metrics::histogram!("reco_training_seconds").record(started.elapsed().as_secs_f64());
        let ds = &data.dataset;
        let row = VersionRow {
            version,
            status: if path.is_some() { "ready" } else { "rejected" }.into(),
            spec: self.spec.to_value()?,
            created: now(),
            trained_through: data.through,
            forget_clock: data.forget_clock,
            window: data.window,
            users: ds.n_users() as i64,
            items: ds.n_items() as i64,
            interactions: ds.interactions.nnz() as i64,
            metrics: t.metrics,
            train_seconds: t.seconds,
            artifact: path.map_or(String::new(), |p| p.display().to_string()),
            message: if t.message.is_empty() {
                reason.to_string()
            } else {
                t.message
            },
        };
        self.store.insert_version(&row).await?;
        tracing::info!(
            version,
            status = row.status.as_str(),
            seconds = t.seconds,
            note = row.message.as_str(),
            "training: done"
        );
        if row.status == "ready" {
            self.activate(&row, Some(reason)).await?;
            self.retire().await?;
        }
        let mut row = row;
        if row.status == "ready" {
            row.status = "active".into();
        }
        Ok(row)
    }

    /// Deletes the artifacts of versions beyond the newest `keep_versions` kept ones; the
    /// versions the running experiment serves are kept whatever their age.
    async fn retire(&self) -> Result<()> {
        let keep = self.cfg.retrain.keep_versions;
        let versions = self.store.versions().await?;
        let pinned: Vec<i64> = self
            .experiment()
            .map(|e| e.spec.arms.iter().map(|a| a.version).collect())
            .unwrap_or_default();
        let mut kept = 0;
        for v in versions
            .iter()
            .filter(|v| v.status == "active" || v.status == "ready")
        {
            kept += 1;
            if kept > keep && v.status != "active" && !pinned.contains(&v.version) {
                if !v.artifact.is_empty() {
                    let _ = std::fs::remove_dir_all(&v.artifact);
                }
                self.store
                    .set_status(v.version, "retired", "artifact deleted (keep_versions)")
                    .await?;
            }
        }
        Ok(())
    }

    /// Counts new events and starts a retrain in the background when the policy says so.
    fn count_events(self: &Arc<Self>, n: u64) {
        let total = self.since_train.fetch_add(n, Ordering::AcqRel) + n;
        let after = self.cfg.retrain.after_events;
        if after > 0 && total >= after && !self.training.load(Ordering::Acquire) {
            let me = self.clone();
            tokio::spawn(async move {
                let _ = me.retrain(&format!("{total} new events")).await;
            });
        }
    }
}

/// Starts the server's state: connects, seeds the store from `seed` when it has no events,
/// loads the catalogue, the active version and the live state, and starts the writer and the
/// retraining schedule.
pub async fn start(cfg: Config, seed: Option<Dataset>) -> Result<AppState> {
    cfg.check()?;
    let spec = model_spec(&cfg)?;
    let store = Store::connect(&cfg.database).await?;
    if let Some(ds) = seed {
        if store.count_events().await? == 0 {
            crate::seed::seed(&store, &ds, &cfg).await?;
        } else {
            tracing::warn!("the store has events already; the data given to seed it is ignored");
        }
    }
    let negative: Vec<String> = cfg
        .feedback
        .types
        .iter()
        .filter(|(_, w)| **w < 0.0)
        .map(|(k, _)| k.clone())
        .collect();
    let positive: Vec<String> = cfg
        .feedback
        .types
        .iter()
        .filter(|(_, w)| **w > 0.0)
        .map(|(k, _)| k.clone())
        .collect();
    let mut catalog = Catalog::default();
    let t = now();
    for row in store.items().await? {
        catalog.upsert(&row, t);
    }
    for (id, n) in store.item_counts(&positive).await? {
        let i = catalog.intern(&id, t);
        catalog.add_popularity(i, n as f64);
    }
    let forgotten: FxHashMap<String, i64> = store.forgotten(0).await?.into_iter().collect();
    // The clock first: a change committed between the two reads is applied again by the first
    // poll, which is harmless.
    let opt_out_seq = store.opt_out_clock().await?;
    let opted_out: rustc_hash::FxHashSet<String> = store.opted_out().await?.into_iter().collect();
    let (tx, rx) = mpsc::channel(4096);
    let artifacts = cfg.artifact_dir();
    let floor = store.max_seq().await?;
    let cfg_impressions = cfg.impressions.clone();
    let drift_window = cfg.drift.window;
    let store_for_log = store.clone();
    let shared = Arc::new(Shared {
        live: Mutex::new(Live::new(floor, cfg.limits.live_users)),
        cfg,
        store,
        spec,
        catalog: RwLock::new(catalog),
        active: RwLock::new(None),
        forgotten: RwLock::new(forgotten),
        writer: tx,
        training: AtomicBool::new(false),
        since_train: AtomicU64::new(0),
        artifacts,
        negative,
        positive,
        applied: Mutex::new(Applied {
            start: floor,
            polled: floor,
            seqs: Default::default(),
        }),
        apply_gate: tokio::sync::Mutex::new(()),
        activation: tokio::sync::Mutex::new(()),
        impressions: if cfg_impressions.enabled {
            crate::impressions::ImpressionLog::start(
                store_for_log,
                cfg_impressions.queue,
                cfg_impressions.flush_ms,
            )
        } else {
            crate::impressions::ImpressionLog::disabled()
        },
        experiment: RwLock::new(None),
        committed: AtomicI64::new(floor),
        opted_out: RwLock::new(opted_out),
        opt_out_seq: AtomicI64::new(opt_out_seq),
        drift_window: Mutex::new(crate::drift::Window::new(drift_window)),
        drift_reference: Mutex::new(None),
    });
    let versions = shared.store.versions().await?;
    // The active version first; if its artifact is damaged, the newest kept one.
    let mut order: Vec<&VersionRow> = versions.iter().filter(|v| v.status == "active").collect();
    order.extend(versions.iter().filter(|v| v.status == "ready"));
    let mut loaded = false;
    for v in order {
        match shared.activate(v, Some("loaded at start")).await {
            Ok(()) => {
                loaded = true;
                break;
            }
            Err(e) => {
                tracing::error!(version = v.version, error = %e, "cannot load model version");
                shared
                    .store
                    .set_status(v.version, "failed", &format!("cannot load: {e}"))
                    .await?;
            }
        }
    }
    // The live state from the database in every case: events above the active version, and
    // the rejected items of every user (those are not in any version).
    let floor = shared.lock_live()?.floor();
    let (users, through) = shared.read_live(floor).await?;
    shared.lock_live()?.reset(floor, users, through);
    tokio::spawn(writer(shared.clone(), rx));
    if let Err(e) = crate::online::resume(&shared).await {
        tracing::error!(error = %e, "cannot resume the running experiment; users get the active version");
    }
    if shared.cfg.retention.days > 0 {
        let me = shared.clone();
        let every = Duration::from_secs(shared.cfg.retention.every_seconds.max(1));
        // The first run a minute after start (sooner with a shorter period): not in the way of
        // start-up, and not skipped by a server that restarts more often than the period.
        periodically(every.min(Duration::from_secs(60)), every, move || {
            let me = me.clone();
            async move {
                if let Err(e) = me.apply_retention().await {
                    tracing::warn!(error = %e, "retention run failed");
                }
            }
        });
    }
    let check = Duration::from_secs(shared.cfg.experiments.check_seconds);
    if !check.is_zero() {
        let me = shared.clone();
        periodically(check, check, move || {
            let me = me.clone();
            async move {
                if let Err(e) = crate::online::check_guard(&me).await {
                    tracing::warn!(error = %e, "guard-rail check failed");
                }
            }
        });
    }
    let check = Duration::from_secs(shared.cfg.monitoring.check_seconds);
    if !check.is_zero() {
        let me = shared.clone();
        // Keeps the drift, quality and alert gauges current.
        periodically(check, check, move || {
            let me = me.clone();
            async move {
                if let Err(e) = me.drift() {
                    tracing::warn!(error = %e, "drift check failed");
                }
                match crate::online::quality(&me, 1, 1).await {
                    Ok(q) => {
                        for a in q.alerts.iter().filter(|a| a.firing) {
                            tracing::warn!(alert = %a.name, value = ?a.value, threshold = a.threshold, "quality alert");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "quality check failed"),
                }
            }
        });
    }
    if !loaded && shared.cfg.retrain.on_start && shared.store.count_events().await? > 0 {
        let me = shared.clone();
        tokio::spawn(async move {
            let _ = me.retrain("first model").await;
        });
    }
    let poll = shared.cfg.poll_ms();
    if poll > 0 {
        let me = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(poll));
            let mut since = now();
            loop {
                tick.tick().await;
                let t = now();
                if let Err(e) = me.poll(since).await {
                    tracing::warn!(error = %e, "polling the database failed");
                    continue;
                }
                // Opt-outs and experiments changed through another replica.
                if let Err(e) = me.follow_opt_outs().await {
                    tracing::warn!(error = %e, "polling opt-outs failed");
                }
                if let Err(e) = crate::online::follow(&me).await {
                    tracing::warn!(error = %e, "polling experiments failed");
                }
                // Rows stamped within the last seconds may still be committing elsewhere.
                since = t - 5;
            }
        });
    }
    if shared.cfg.retrain.every_seconds > 0 {
        let me = shared.clone();
        let every = Duration::from_secs(shared.cfg.retrain.every_seconds);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if me.since_train.load(Ordering::Acquire) > 0 {
                    let _ = me.retrain("schedule").await;
                }
            }
        });
    }
    Ok(shared)
}

/// The model specification of the configuration.
fn model_spec(cfg: &Config) -> Result<ModelSpec> {
    use crate::config::ModelSource;
    let spec = match &cfg.model {
        ModelSource::Inline(v) => ModelSpec::from_value(v.clone())
            .map_err(|e| ServeError::Config(format!("model: {e}")))?,
        ModelSource::File(p) => {
            let bytes = reco_core::input::read(p, reco_core::input::MAX_SPEC_BYTES)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ServeError::Config(format!("{} is not UTF-8", p.display())))?;
            let is_toml = p.extension().is_some_and(|e| e == "toml");
            reco_pipeline::spec_from_file(&text, is_toml)
                .map_err(|e| ServeError::Config(format!("{}: {e}", p.display())))?
        }
    };
    if !spec.ranks() {
        return Err(ServeError::Config(format!(
            "model: {} does not rank items; serve a ranking model",
            spec.kind()
        )));
    }
    Ok(spec)
}

/// Runs `job` every `every` for the life of the server, the first time `first` after start.
fn periodically<F, Fut>(first: Duration, every: Duration, mut job: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
        loop {
            tick.tick().await;
            job().await;
        }
    });
}

/// Commits feedback in groups: the batches that arrived while the previous commit ran go into
/// one transaction, so many small concurrent requests share one disk sync.
async fn writer(state: AppState, mut rx: mpsc::Receiver<WriteJob>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut events = jobs[0].batch.events.len();
        while jobs.len() < GROUP_BATCHES && events < GROUP_EVENTS {
            match rx.try_recv() {
                Ok(j) => {
                    events += j.batch.events.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let batches: Vec<Batch> = jobs.iter().map(|j| j.batch.clone()).collect();
        // Items without a row: new ones, and deleted ones that an event brings back.
        let new_items: Vec<String> = match state.catalog_read() {
            Ok(cat) => {
                let mut ids: Vec<String> = batches
                    .iter()
                    .flat_map(|b| b.events.iter())
                    .filter(|e| cat.get(&e.item).is_none_or(|i| cat.is_deleted(i)))
                    .map(|e| e.item.clone())
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            }
            Err(_) => Vec::new(),
        };
        let refs: Vec<&str> = new_items.iter().map(String::as_str).collect();
        let started = Instant::now();
        let gate = state.apply_gate.lock().await;
        let result = state.store.insert_batches(&batches, &refs).await;
        metrics::histogram!("reco_commit_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok((outcomes, seqs)) => {
                if let Ok(mut a) = state.applied.lock() {
                    a.record(&seqs);
                }
                state.note_committed(&seqs);
                let mut inserted = 0u64;
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    if let BatchOutcome::Inserted { last_seq } = outcome {
                        if let Err(e) = state.apply(&job.batch, last_seq) {
                            let _ = job.reply.send(Err(e));
                            continue;
                        }
                        inserted += job.batch.events.len() as u64;
                    }
                    let _ = job.reply.send(Ok(outcome));
                }
                drop(gate);
                metrics::counter!("reco_events_ingested_total").increment(inserted);
                if inserted > 0 {
                    state.count_events(inserted);
                }
            }
            Err(e) => {
                drop(gate);
                let message = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(ServeError::Storage(message.clone())));
                }
            }
        }
    }
}

/// The largest event value.
pub const MAX_VALUE: f64 = 1e6;

/// Events of a feedback request, checked.
pub fn check_events(cfg: &Config, events: Vec<NewEvent>) -> Result<Vec<NewEvent>> {
    let max = cfg.limits.max_id_bytes;
    for (k, e) in events.iter().enumerate() {
        for (what, s) in [("user", &e.user), ("item", &e.item), ("type", &e.kind)] {
            if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
                return Err(ServeError::Unprocessable(format!(
                    "events[{k}].{what}: 1 to {max} bytes without control characters, got {} bytes",
                    s.len()
                )));
            }
        }
        if let Some(r) = &e.recommendation {
            if r.len() > max || r.chars().any(char::is_control) {
                return Err(ServeError::Unprocessable(format!(
                    "events[{k}].recommendation: at most {max} bytes without control characters"
                )));
            }
        }
        if !cfg.feedback.types.contains_key(&e.kind) {
            let known: Vec<&str> = cfg.feedback.types.keys().map(String::as_str).collect();
            return Err(ServeError::Unprocessable(format!(
                "events[{k}].type {:?} is not configured (one of {})",
                e.kind,
                known.join(", ")
            )));
        }
        // Positive and bounded: the sign of an event's weight is its type's, and training
        // values stay finite.
        if !(e.value > 0.0 && e.value <= MAX_VALUE) {
            return Err(ServeError::Unprocessable(format!(
                "events[{k}].value = {}: a number above 0 and at most {MAX_VALUE}",
                e.value
            )));
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelSource;

    fn spec_of(file: &str) -> Result<ModelSpec> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(file);
        let cfg = Config {
            model: ModelSource::File(path),
            ..Config::default()
        };
        model_spec(&cfg)
    }

    #[test]
    fn a_pipeline_file_is_served_as_a_pipeline() {
        reco_pipeline::register().expect("register");
        let spec = spec_of("examples/pipeline.toml").expect("pipeline file");
        assert_eq!(spec.kind(), "pipeline");
        assert!(spec.ranks());
    }

    #[test]
    fn a_model_file_with_an_unknown_key_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "model = \"ials\"\nfactorz = 8\n").expect("write");
        let cfg = Config {
            model: ModelSource::File(path),
            ..Config::default()
        };
        let err = model_spec(&cfg).expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains("factorz"), "{text}");
    }
}
