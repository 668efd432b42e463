//! The online loop's routes: user controls (opt-out, export), experiments, impression
//! statistics, and monitoring (drift, quality).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{check_id, in_model, Json, Path, Query};
use crate::error::{ErrorBody, Result, ServeError};
use crate::experiment::ExperimentSpec;
use crate::online::{ExperimentResults, ImpressionStats, QualityReport};
use crate::server::AppState;
use crate::store::{now, ExperimentRow};

/// A user's choice about personalisation.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOut {
    /// True: popular items instead of personal ones, and their events are not trained on;
    /// false: personalised again.
    pub opt_out: bool,
}

/// Opts a user out of personalisation (or back in).
#[utoipa::path(put, path = "/v1/users/{user}/opt-out", params(("user" = String, Path, description = "User id")),
    request_body = OptOut, responses((status = 200, body = OptOut), (status = 400, body = ErrorBody)))]
pub async fn put_opt_out(
    State(state): State<AppState>,
    Path(user): Path<String>,
    Json(o): Json<OptOut>,
) -> Result<Json<OptOut>> {
    check_id(&state, "user", &user)?;
    state.set_opt_out(&user, o.opt_out).await?;
    Ok(Json(o))
}

/// Everything stored about a user.
#[derive(Serialize, ToSchema)]
pub struct UserExport {
    /// User id.
    pub id: String,
    /// Metadata fields.
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    /// Opted out of personalisation.
    pub opt_out: bool,
    /// Every stored event, oldest first: `{item, type, value, timestamp, recommendation?}`.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// The lists shown to them that are still kept: `{id, timestamp, model_version, experiment?,
    /// arm?, items}`.
    #[schema(value_type = Vec<Object>)]
    pub impressions: Vec<serde_json::Value>,
    /// True when `impressions.max_scan` cut the impressions read.
    pub truncated: bool,
    /// The running experiment's arm for them, if they are in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<(String, String)>,
    /// In the active model version.
    pub in_model: bool,
}

/// Exports everything stored about a user (their right of access): metadata, opt-out, events,
/// the lists shown to them, their experiment arm.
#[utoipa::path(get, path = "/v1/users/{user}/export", params(("user" = String, Path, description = "User id")),
    responses((status = 200, body = UserExport), (status = 404, body = ErrorBody)))]
pub async fn export_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> Result<Json<UserExport>> {
    check_id(&state, "user", &user)?;
    let (fields, _) = state
        .store
        .user(&user)
        .await?
        .ok_or_else(|| ServeError::NotFound(format!("user {user:?} does not exist")))?;
    let events = state
        .store
        .user_event_rows(&user)
        .await?
        .into_iter()
        .map(|(e, rec)| {
            let mut v = serde_json::json!({"item": e.item, "type": e.kind, "value": e.value,
                                           "timestamp": e.timestamp});
            if let Some(r) = rec {
                v["recommendation"] = r.into();
            }
            v
        })
        .collect();
    state.impressions.flush().await;
    let max = state.cfg.impressions.max_scan;
    let all = state.store.impressions(None, 0, max).await?;
    let truncated = all.len() as i64 >= max;
    let impressions = all
        .into_iter()
        .filter(|r| r.user.as_deref() == Some(user.as_str()))
        .map(|r| {
            serde_json::json!({"id": r.id, "timestamp": r.ts, "model_version": r.version,
                               "experiment": r.experiment, "arm": r.arm, "items": r.items})
        })
        .collect();
    // As their next list would be logged: opted-out users are in no experiment, and users of
    // an arm the guard rail stopped are on control.
    let experiment = if state.opted_out(&user) {
        None
    } else {
        crate::online::route(state.experiment(), &user).label()
    };
    let in_model = in_model(&state, &user);
    Ok(Json(UserExport {
        opt_out: state.opted_out(&user),
        id: user,
        fields,
        events,
        impressions,
        truncated,
        experiment,
        in_model,
    }))
}

/// Drift of the recent events against the active version's training data: per field
/// (categories, popularity band) the population stability index, both distributions, and
/// whether the version is stale.
#[utoipa::path(get, path = "/v1/monitoring/drift",
    responses((status = 200, body = crate::drift::DriftReport), (status = 401, body = ErrorBody)))]
pub async fn drift(State(state): State<AppState>) -> Result<Json<crate::drift::DriftReport>> {
    Ok(Json(state.drift()?))
}

/// Experiments, newest first.
#[utoipa::path(get, path = "/v1/experiments", responses((status = 200, body = Vec<ExperimentRow>), (status = 401, body = ErrorBody)))]
pub async fn experiments(State(state): State<AppState>) -> Result<Json<Vec<ExperimentRow>>> {
    Ok(Json(state.store.experiments().await?))
}

/// Starts an experiment between model versions (one runs at a time).
#[utoipa::path(post, path = "/v1/experiments", request_body = ExperimentSpec,
    responses((status = 200, body = ExperimentRow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_experiment(
    State(state): State<AppState>,
    Json(spec): Json<ExperimentSpec>,
) -> Result<Json<ExperimentRow>> {
    Ok(Json(crate::online::start(&state, spec).await?))
}

/// An experiment's results: per arm, click-through and conversion with intervals, the
/// comparison with control (fixed-horizon and sequential p-values), click-through by position,
/// the arms' offline metrics; interleaving's preference. Applies the guard rail.
#[utoipa::path(get, path = "/v1/experiments/{name}", params(("name" = String, Path, description = "Experiment name")),
    responses((status = 200, body = ExperimentResults), (status = 404, body = ErrorBody)))]
pub async fn experiment_results(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ExperimentResults>> {
    Ok(Json(crate::online::results(&state, &name).await?))
}

/// Stops an experiment: every user is back on the active version.
#[utoipa::path(post, path = "/v1/experiments/{name}/stop", params(("name" = String, Path, description = "Experiment name")),
    responses((status = 200, body = ExperimentRow), (status = 404, body = ErrorBody)))]
pub async fn stop_experiment(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ExperimentRow>> {
    Ok(Json(
        crate::online::stop(&state, &name, "stopped by request").await?,
    ))
}

/// Options of the impression statistics.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// The window: lists served in the last this many seconds (default a day).
    #[serde(default = "day")]
    pub seconds: i64,
    /// A user metadata field to break click-through down by.
    pub group: Option<String>,
}

fn day() -> i64 {
    86_400
}

/// Click-through and conversion of the lists served lately, by model version, experiment
/// arm, position, item popularity band and (with `group`) user group.
#[utoipa::path(get, path = "/v1/impressions/stats", params(StatsParams),
    responses((status = 200, body = ImpressionStats), (status = 400, body = ErrorBody)))]
pub async fn impression_stats(
    State(state): State<AppState>,
    Query(p): Query<StatsParams>,
) -> Result<Json<ImpressionStats>> {
    if p.seconds < 1 {
        return Err(ServeError::BadRequest(format!(
            "seconds = {}: at least 1",
            p.seconds
        )));
    }
    if let Some(g) = &p.group {
        check_id(&state, "group field", g)?;
    }
    let since = now().saturating_sub(p.seconds);
    Ok(Json(
        crate::online::stats(&state, since, p.group.as_deref()).await?,
    ))
}

/// Options of the quality series.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QualityParams {
    /// The span: lists served in the last this many seconds (default a day).
    #[serde(default = "day")]
    pub seconds: i64,
    /// Buckets the span is cut into (default 24, at most 1000).
    #[serde(default = "buckets")]
    pub buckets: usize,
}

fn buckets() -> usize {
    24
}

/// Quality and bias of the lists served over time: per bucket, click-through and conversion
/// with intervals, catalogue coverage, popularity lift, exposure of head, mid and tail items,
/// click-through by user group; and the latest window with the configured alerts (the same
/// figures as the `reco_quality_*` and `reco_alert` gauges).
#[utoipa::path(get, path = "/v1/monitoring/quality", params(QualityParams),
    responses((status = 200, body = QualityReport), (status = 400, body = ErrorBody)))]
pub async fn quality(
    State(state): State<AppState>,
    Query(p): Query<QualityParams>,
) -> Result<Json<QualityReport>> {
    if p.seconds < 1 || p.seconds > 366 * 86_400 {
        return Err(ServeError::BadRequest(format!(
            "seconds = {}: 1 to 31622400 (a year)",
            p.seconds
        )));
    }
    if p.buckets == 0 || p.buckets > 1000 {
        return Err(ServeError::BadRequest(format!(
            "buckets = {}: 1 to 1000",
            p.buckets
        )));
    }
    Ok(Json(
        crate::online::quality(&state, p.seconds, p.buckets).await?,
    ))
}
