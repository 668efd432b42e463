//! The online loop on the server: the running experiment (its arms' models loaded beside the
//! active one), impressions of every list, and results joined from impressions and the
//! feedback events that cite them.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::{Active, Pick};
use crate::error::{Result, ServeError};
use crate::experiment::{
    self, ArmResult, Design, ExperimentSpec, Outcome, Preference, Rate, Shown,
};
use crate::quality::{Alert, Lookups, QualityPoint};
use crate::server::Shared;
use crate::store::{now, ExperimentRow, ImpressionRow};

/// The experiment that is running, with a loaded model per arm.
pub struct Running {
    /// As stored.
    pub row: ExperimentRow,
    /// Its specification.
    pub spec: ExperimentSpec,
    /// Each arm's model.
    pub models: Vec<Arc<Active>>,
    /// Arms stopped by the guard rail: their users get control's lists.
    pub stopped: Vec<bool>,
}

impl Running {
    /// The running state of a stored experiment with its loaded models; arms the row lists as
    /// stopped stay stopped.
    pub fn new(row: ExperimentRow, spec: ExperimentSpec, models: Vec<Arc<Active>>) -> Running {
        let stopped = spec
            .arms
            .iter()
            .map(|a| row.stopped_arms.contains(&a.name))
            .collect();
        Running {
            row,
            spec,
            models,
            stopped,
        }
    }
}

/// Who answers a user's list.
pub enum Route {
    /// The active version, outside any experiment.
    Active,
    /// One arm's model.
    Arm {
        /// The experiment.
        running: Arc<Running>,
        /// The arm whose name is logged.
        arm: usize,
    },
    /// Both arms of an interleaving experiment.
    Interleave(Arc<Running>),
}

impl Route {
    /// The experiment and arm a list on this route is logged with (`interleaved` for an
    /// interleaving experiment); none on the active version.
    pub fn label(&self) -> Option<(String, String)> {
        match self {
            Route::Active => None,
            Route::Arm { running, arm } => Some((
                running.row.name.clone(),
                running.spec.arms.get(*arm)?.name.clone(),
            )),
            Route::Interleave(running) => {
                Some((running.row.name.clone(), "interleaved".to_string()))
            }
        }
    }
}

/// The route of `user` under the running experiment, if any.
pub fn route(running: Option<Arc<Running>>, user: &str) -> Route {
    let Some(r) = running else {
        return Route::Active;
    };
    match experiment::assign(&r.spec, user) {
        None => Route::Active,
        Some(_) if r.spec.design == Design::Interleave => Route::Interleave(r),
        Some(k) => {
            let arm = if r.stopped.get(k).copied().unwrap_or(false) {
                0
            } else {
                k
            };
            Route::Arm { running: r, arm }
        }
    }
}

/// Mixes two arms' answers by team draft; returns the picks and each one's team.
pub fn interleave(a: Vec<Pick>, b: Vec<Pick>, n: usize) -> (Vec<Pick>, Vec<u8>) {
    let ids_a: Vec<u32> = a.iter().map(|p| p.item).collect();
    let ids_b: Vec<u32> = b.iter().map(|p| p.item).collect();
    let (ids, teams) = experiment::team_draft(&ids_a, &ids_b, n, rand::random::<bool>);
    let mut by_item: FxHashMap<u32, Pick> = FxHashMap::default();
    for p in b.into_iter().chain(a) {
        by_item.insert(p.item, p);
    }
    let picks = ids.iter().filter_map(|i| by_item.remove(i)).collect();
    (picks, teams)
}

/// Loads the model of every arm (reusing the active version's when an arm names it).
pub async fn load_arms(state: &Arc<Shared>, spec: &ExperimentSpec) -> Result<Vec<Arc<Active>>> {
    let versions = state.store.versions().await?;
    let active = state.active();
    let mut out = Vec::with_capacity(spec.arms.len());
    for arm in &spec.arms {
        if let Some(a) = active.as_ref().filter(|a| a.version == arm.version) {
            out.push(a.clone());
            continue;
        }
        let v = versions
            .iter()
            .find(|v| v.version == arm.version)
            .ok_or_else(|| {
                ServeError::NotFound(format!(
                    "arm {:?}: no model version {}",
                    arm.name, arm.version
                ))
            })?;
        if !matches!(v.status.as_str(), "active" | "ready" | "rejected") {
            return Err(ServeError::Unprocessable(format!(
                "arm {:?}: version {} is {} and has no artifact to serve",
                arm.name, v.version, v.status
            )));
        }
        out.push(Arc::new(state.load_version(v).await?));
    }
    Ok(out)
}

/// Starts an experiment: checks it, loads its arms, records it, makes it the running one.
pub async fn start(state: &Arc<Shared>, spec: ExperimentSpec) -> Result<ExperimentRow> {
    spec.validate(state.cfg.limits.max_id_bytes)?;
    if let Some(r) = state.experiment() {
        return Err(ServeError::Conflict(format!(
            "experiment {:?} is running; stop it first",
            r.row.name
        )));
    }
    let models = load_arms(state, &spec).await?;
    let value = serde_json::to_value(&spec)
        .map_err(|e| ServeError::Storage(format!("experiment spec: {e}")))?;
    if !state.store.create_experiment(&spec.name, &value).await? {
        return Err(ServeError::Conflict(format!(
            "an experiment named {:?} exists, or another one is running",
            spec.name
        )));
    }
    let row = state
        .store
        .experiments()
        .await?
        .into_iter()
        .find(|e| e.name == spec.name)
        .ok_or_else(|| ServeError::Storage("the new experiment was not found".into()))?;
    state.set_experiment(Some(Arc::new(Running::new(row.clone(), spec, models))));
    tracing::info!(experiment = %row.name, "experiment started");
    Ok(row)
}

/// Loads the running experiment at start-up, if one is recorded.
pub async fn resume(state: &Arc<Shared>) -> Result<()> {
    let Some(row) = state
        .store
        .experiments()
        .await?
        .into_iter()
        .find(|e| e.status == "running")
    else {
        return Ok(());
    };
    let spec: ExperimentSpec = serde_json::from_value(row.spec.clone())
        .map_err(|e| ServeError::Storage(format!("experiment {:?}: {e}", row.name)))?;
    let models = load_arms(state, &spec).await?;
    state.set_experiment(Some(Arc::new(Running::new(row, spec, models))));
    Ok(())
}

/// Follows the experiments table, for a replica: starts the experiment another replica
/// started, drops one it stopped, and takes over the arms its guard rail stopped.
pub async fn follow(state: &Arc<Shared>) -> Result<()> {
    let row = state
        .store
        .experiments()
        .await?
        .into_iter()
        .find(|e| e.status == "running");
    let ours = state.experiment();
    match (row, ours) {
        (None, None) => {}
        (None, Some(_)) => state.set_experiment(None),
        (Some(row), Some(r)) if r.row.name == row.name => {
            if row.stopped_arms != r.row.stopped_arms || row.message != r.row.message {
                let running = Running::new(row, r.spec.clone(), r.models.clone());
                state.set_experiment(Some(Arc::new(running)));
            }
        }
        (Some(_), _) => resume(state).await?,
    }
    Ok(())
}

/// Stops an experiment (every user back on the active version).
pub async fn stop(state: &Arc<Shared>, name: &str, why: &str) -> Result<ExperimentRow> {
    let mut row = find(state, name).await?;
    if row.status == "running" {
        row.status = "stopped".into();
        row.ended = now();
        row.message = why.into();
        state.store.update_experiment(&row).await?;
        if state.experiment().is_some_and(|r| r.row.name == name) {
            state.set_experiment(None);
        }
    }
    Ok(row)
}

async fn find(state: &Shared, name: &str) -> Result<ExperimentRow> {
    state
        .store
        .experiments()
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ServeError::NotFound(format!("no experiment named {name:?}")))
}

/// An experiment's results.
#[derive(Serialize, ToSchema)]
pub struct ExperimentResults {
    /// The experiment as stored (after any guard-rail stop this call made).
    pub experiment: ExperimentRow,
    /// Per arm, control first.
    pub arms: Vec<ArmResult>,
    /// Interleaving's verdict (interleaving designs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preference: Option<Preference>,
    /// Each arm's offline metrics, from its version's hold-out evaluation at training.
    #[schema(value_type = Object)]
    pub offline: FxHashMap<String, serde_json::Value>,
    /// True when `impressions.max_scan` cut the impressions read.
    pub truncated: bool,
}

/// Reads an experiment's impressions and the events citing them.
async fn shown_and_outcomes(
    state: &Shared,
    experiment: Option<&str>,
    since: i64,
) -> Result<(Vec<ImpressionRow>, Vec<Outcome>, bool)> {
    state.impressions.flush().await;
    let max = state.cfg.impressions.max_scan;
    let rows = state.store.impressions(experiment, since, max).await?;
    let truncated = rows.len() as i64 >= max;
    let Some(from) = rows.iter().map(|r| r.event_seq).min() else {
        return Ok((rows, Vec::new(), truncated));
    };
    let ids: rustc_hash::FxHashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let imp = &state.cfg.impressions;
    let mut outcomes = Vec::new();
    let mut after = from;
    loop {
        let chunk = state.store.citing_events(after, 100_000).await?;
        let Some(last) = chunk.last().map(|c| c.0) else {
            break;
        };
        for (_, rec, item, kind) in chunk {
            if ids.contains(rec.as_str()) {
                outcomes.push(Outcome {
                    click: imp.click_types.contains(&kind),
                    conversion: imp.conversion_types.contains(&kind),
                    recommendation: rec,
                    item,
                });
            }
        }
        after = last;
    }
    Ok((rows, outcomes, truncated))
}

fn shown(rows: &[ImpressionRow], arm_of: impl Fn(&ImpressionRow) -> Option<usize>) -> Vec<Shown> {
    rows.iter()
        .map(|r| Shown {
            id: r.id.clone(),
            arm: arm_of(r),
            items: r.items.clone(),
            teams: r
                .teams
                .as_deref()
                .map(|t| t.bytes().map(|b| u8::from(b == b'1')).collect())
                .unwrap_or_default(),
        })
        .collect()
}

/// Results of an experiment; for a running one, applies the guard rail first.
pub async fn results(state: &Arc<Shared>, name: &str) -> Result<ExperimentResults> {
    let row = find(state, name).await?;
    let spec: ExperimentSpec = serde_json::from_value(row.spec.clone())
        .map_err(|e| ServeError::Storage(format!("experiment {name:?}: {e}")))?;
    let (rows, outcomes, truncated) = shown_and_outcomes(state, Some(name), 0).await?;
    let names: Vec<&str> = spec.arms.iter().map(|a| a.name.as_str()).collect();
    let shown = shown(&rows, |r| {
        r.arm
            .as_deref()
            .and_then(|a| names.iter().position(|n| *n == a))
    });
    let (per_arm, preference) = experiment::results(spec.arms.len(), &shown, &outcomes);
    let tau = state.cfg.experiments.effect_sd;
    let mut row = row;
    if row.status == "running" && spec.design == Design::Split {
        let control = &per_arm[0].ctr;
        let newly: Vec<&str> = spec
            .arms
            .iter()
            .zip(&per_arm)
            .skip(1)
            .filter(|(a, r)| {
                !row.stopped_arms.contains(&a.name)
                    && experiment::guard_stops(&spec.guard, control, &r.ctr, tau)
            })
            .map(|(a, _)| a.name.as_str())
            .collect();
        if !newly.is_empty() {
            for n in &newly {
                row.stopped_arms.push(n.to_string());
            }
            row.message = format!(
                "guard rail: {} stopped, click-through significantly below control's \
                 (sequential test, α = {})",
                newly.join(", "),
                spec.guard.alpha
            );
            state.store.update_experiment(&row).await?;
            if let Some(r) = state.experiment().filter(|r| r.row.name == name) {
                let running = Running::new(row.clone(), spec.clone(), r.models.clone());
                state.set_experiment(Some(Arc::new(running)));
            }
            tracing::warn!(experiment = %name, arms = ?newly, "guard rail stopped arms");
        }
    }
    let control = per_arm[0].ctr.clone();
    let arms = spec
        .arms
        .iter()
        .zip(per_arm)
        .enumerate()
        .map(|(k, (a, t))| {
            let ctr = t.ctr;
            metrics::gauge!("reco_experiment_ctr", "experiment" => name.to_string(), "arm" => a.name.clone())
                .set(ctr.rate);
            ArmResult {
                name: a.name.clone(),
                version: a.version,
                impressions: t.impressions,
                vs_control: (k > 0 && spec.design == Design::Split)
                    .then(|| experiment::compare(&control, &ctr, tau))
                    .flatten(),
                ctr,
                conversion: t.conversion,
                ctr_by_position: t.by_position,
                stopped: row.stopped_arms.contains(&a.name),
            }
        })
        .collect();
    let versions = state.store.versions().await?;
    let offline = spec
        .arms
        .iter()
        .filter_map(|a| {
            versions
                .iter()
                .find(|v| v.version == a.version)
                .map(|v| (a.name.clone(), v.metrics.clone()))
        })
        .collect();
    Ok(ExperimentResults {
        experiment: row,
        arms,
        preference,
        offline,
        truncated,
    })
}

/// Applies the guard rail to the running experiment (the periodic check).
pub async fn check_guard(state: &Arc<Shared>) -> Result<()> {
    if let Some(r) = state.experiment() {
        if r.spec.guard.enabled && r.spec.design == Design::Split {
            results(state, &r.row.name).await?;
        }
    }
    Ok(())
}

/// Click-through of the lists served since a time, broken down.
#[derive(Serialize, ToSchema)]
pub struct ImpressionStats {
    /// Lists read.
    pub impressions: u64,
    /// All of them.
    pub overall: Rate,
    /// Share of lists with a conversion.
    pub conversion: Rate,
    /// By model version.
    pub by_version: Vec<(i64, Rate)>,
    /// By experiment arm (`experiment/arm`).
    pub by_arm: Vec<(String, Rate)>,
    /// Clicks per shown item at positions 1, 2, ….
    pub by_position: Vec<Rate>,
    /// Clicks per shown item by the item's popularity band: `head` (the 10% most popular
    /// items), `mid` (the next 40%), `tail` (the rest).
    pub by_popularity: Vec<(String, Rate)>,
    /// By the value of a user field (`group=FIELD`).
    pub by_group: Vec<(String, Rate)>,
    /// True when `impressions.max_scan` cut the impressions read.
    pub truncated: bool,
}

/// Popularity group (0 head, 1 mid, 2 tail) and popularity of every live catalogue item, by
/// the audit's rule: the most popular items holding 20% of the popularity are the head, the
/// least popular holding 20% the tail.
fn item_groups(state: &Shared) -> Result<FxHashMap<String, (u8, f64)>> {
    let cat = state.catalog_read()?;
    let mut live: Vec<u32> = (0..cat.len() as u32)
        .filter(|&i| !cat.is_deleted(i))
        .collect();
    // Ties at a group's edge go by id, so the groups do not hang on the catalogue's order.
    live.sort_unstable_by(|&a, &b| cat.id(a).cmp(cat.id(b)));
    let pops: Vec<f64> = live.iter().map(|&i| cat.popularity(i)).collect();
    let groups = reco_eval::fairness::popularity_groups(&pops, 0.2, 0.2);
    Ok(live
        .iter()
        .zip(groups)
        .zip(pops)
        .map(|((&i, g), p)| (cat.id(i).to_string(), (g, p)))
        .collect())
}

/// Each user's group: the value of `field` when given, else the activity band of the user in
/// the active version (`heavy`, `medium`, `light`, or `new` without training events).
async fn user_groups(state: &Shared, field: Option<&str>) -> Result<UserGroups> {
    Ok(match field {
        Some(f) => UserGroups::Field(state.store.user_field(f).await?.into_iter().collect()),
        None => {
            let active = state.active();
            let bands = active
                .as_deref()
                .map(Active::user_bands)
                .unwrap_or_default();
            UserGroups::Activity { active, bands }
        }
    })
}

/// How users are grouped.
enum UserGroups {
    /// By a user field's value (`none` without one).
    Field(FxHashMap<String, String>),
    /// By activity in the active version: its band per model user.
    Activity {
        active: Option<Arc<Active>>,
        bands: Vec<u8>,
    },
}

impl UserGroups {
    fn of(&self, user: &str) -> String {
        use crate::engine::ACTIVITY;
        match self {
            UserGroups::Field(m) => m.get(user).cloned().unwrap_or_else(|| "none".into()),
            UserGroups::Activity { active, bands } => active
                .as_deref()
                .and_then(|a| a.loaded.users.get(user))
                .and_then(|u| bands.get(u as usize))
                .map_or(ACTIVITY[3], |&b| ACTIVITY[usize::from(b.min(2))])
                .to_string(),
        }
    }
}

/// Breakdowns of click-through since `since` (Unix seconds), by `group` when given.
pub async fn stats(
    state: &Arc<Shared>,
    since: i64,
    group: Option<&str>,
) -> Result<ImpressionStats> {
    let (rows, outcomes, truncated) = shown_and_outcomes(state, None, since).await?;
    let shown = shown(&rows, |_| None);
    let reactions = experiment::join(&shown, &outcomes);
    let items = item_groups(state)?;
    let groups = match group {
        Some(_) => Some(user_groups(state, group).await?),
        None => None,
    };
    type Tally = FxHashMap<String, (u64, u64)>;
    let add = |m: &mut Tally, k: String, hit: bool| {
        let e = m.entry(k).or_insert((0, 0));
        e.0 += u64::from(hit);
        e.1 += 1;
    };
    let (mut ver, mut arm, mut pop, mut grp): (Tally, Tally, Tally, Tally) = Default::default();
    let mut pos: Vec<(u64, u64)> = Vec::new();
    let (mut any, mut conv) = (0u64, 0u64);
    for (re, r) in reactions.iter().zip(&rows) {
        any += u64::from(re.click);
        conv += u64::from(re.conversion);
        add(&mut ver, r.version.unwrap_or(0).to_string(), re.click);
        if let (Some(e), Some(a)) = (&r.experiment, &r.arm) {
            add(&mut arm, format!("{e}/{a}"), re.click);
        }
        if let (Some(g), Some(u)) = (&groups, r.user.as_deref()) {
            add(&mut grp, g.of(u), re.click);
        }
        for (p, (item, &h)) in r.items.iter().zip(&re.clicks).enumerate() {
            if pos.len() <= p {
                pos.resize(p + 1, (0, 0));
            }
            pos[p].0 += u64::from(h);
            pos[p].1 += 1;
            let g = items.get(item).map_or(2, |x| x.0);
            add(
                &mut pop,
                crate::quality::GROUPS[usize::from(g.min(2))].into(),
                h,
            );
        }
    }
    let rates = |m: Tally| -> Vec<(String, Rate)> {
        let mut v: Vec<(String, Rate)> = m
            .into_iter()
            .map(|(k, (c, n))| (k, Rate::of(c, n)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let n = rows.len() as u64;
    Ok(ImpressionStats {
        impressions: n,
        overall: Rate::of(any, n),
        conversion: Rate::of(conv, n),
        by_version: rates(ver)
            .into_iter()
            .map(|(k, r)| (k.parse().unwrap_or(0), r))
            .collect(),
        by_arm: rates(arm),
        by_position: pos.into_iter().map(|(c, n)| Rate::of(c, n)).collect(),
        by_popularity: rates(pop),
        by_group: rates(grp),
        truncated,
    })
}

/// Quality over time and the alerts of the latest window.
#[derive(Serialize, ToSchema)]
pub struct QualityReport {
    /// One point per bucket, oldest first.
    pub series: Vec<QualityPoint>,
    /// The latest `monitoring.window_seconds`, which the gauges and alerts describe.
    pub window: QualityPoint,
    /// The configured alerts on that window.
    pub alerts: Vec<Alert>,
    /// How users are grouped in `by_group`: a user field's name, or `activity`.
    pub groups: String,
    /// True when `impressions.max_scan` cut the impressions read.
    pub truncated: bool,
}

/// Quality in `buckets` buckets over the last `seconds`, and the latest window with its
/// alerts; sets the quality and alert gauges.
pub async fn quality(state: &Arc<Shared>, seconds: i64, buckets: usize) -> Result<QualityReport> {
    let m = &state.cfg.monitoring;
    let end = now() + 1;
    let window = i64::try_from(m.window_seconds).unwrap_or(i64::MAX);
    let since = end.saturating_sub(seconds.max(window));
    let (rows, outcomes, truncated) = shown_and_outcomes(state, None, since).await?;
    let reactions = experiment::join(&shown(&rows, |_| None), &outcomes);
    let items = item_groups(state)?;
    let groups = user_groups(state, m.group_field.as_deref()).await?;
    let active = state.active();
    // Each listed user's mean history popularity, once.
    let mut history: FxHashMap<&str, f64> = FxHashMap::default();
    if let Some(a) = active.as_deref() {
        let cat = state.catalog_read()?;
        for r in &rows {
            let Some(u) = r.user.as_deref() else { continue };
            if history.contains_key(u) {
                continue;
            }
            if let Some(mu) = a.loaded.users.get(u) {
                let seen = a.loaded.seen(mu);
                if !seen.is_empty() {
                    let total: f64 = seen
                        .iter()
                        .filter_map(|&i| a.to_catalog.get(i as usize))
                        .map(|&c| cat.popularity(c))
                        .sum();
                    history.insert(u, total / seen.len() as f64);
                }
            }
        }
    }
    let look = Lookups {
        group: &|i| items.get(i).map(|x| x.0),
        popularity: &|i| items.get(i).map_or(0.0, |x| x.1),
        history_popularity: &|u| history.get(u).copied(),
        user_group: &|u| groups.of(u),
        live_items: items.len(),
    };
    let buckets = buckets.max(1);
    let width = (seconds.max(1) + buckets as i64 - 1) / buckets as i64;
    let start = end.saturating_sub(width.saturating_mul(buckets as i64));
    let series = crate::quality::series(&rows, &reactions, start, width, buckets, &look);
    let latest = crate::quality::series(&rows, &reactions, end - window, window, 1, &look)
        .pop()
        .ok_or_else(|| ServeError::Storage("no quality window".into()))?;
    let alerts = crate::quality::alerts(m, &latest);
    set_gauges(&latest, &alerts);
    Ok(QualityReport {
        series,
        window: latest,
        alerts,
        groups: m.group_field.clone().unwrap_or_else(|| "activity".into()),
        truncated,
    })
}

fn set_gauges(p: &QualityPoint, alerts: &[Alert]) {
    metrics::gauge!("reco_quality_impressions").set(p.impressions as f64);
    metrics::gauge!("reco_quality_ctr").set(p.ctr.rate);
    metrics::gauge!("reco_quality_conversion").set(p.conversion.rate);
    metrics::gauge!("reco_quality_coverage").set(p.coverage);
    if let Some(l) = p.popularity_lift {
        metrics::gauge!("reco_quality_popularity_lift").set(l);
    }
    for (g, e) in &p.exposure {
        metrics::gauge!("reco_quality_exposure", "group" => g.clone()).set(*e);
    }
    for (g, r) in &p.by_group {
        metrics::gauge!("reco_quality_group_ctr", "group" => g.clone()).set(r.rate);
    }
    for a in alerts {
        metrics::gauge!("reco_alert", "name" => a.name.clone()).set(f64::from(u8::from(a.firing)));
    }
}
