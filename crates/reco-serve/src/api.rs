//! The HTTP routes: JSON in and out, errors as [`ErrorBody`], every route in the OpenAPI
//! document served at `/openapi.json`.

use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::engine::{self, Answer, Ask};
use crate::error::{ErrorBody, Result, ServeError};
use crate::experiment::ExperimentSpec;
use crate::online::{ExperimentResults, ImpressionStats};
use crate::server::AppState;
use crate::store::{now, Batch, BatchOutcome, ExperimentRow, ItemRow, NewEvent, VersionRow};

mod online;
pub use online::{
    drift, experiment_results, experiments, export_user, impression_stats, put_opt_out, quality,
    start_experiment, stop_experiment, OptOut, QualityParams, StatsParams, UserExport,
};

/// A JSON body whose rejections are JSON errors (400 syntax, 413 size, 422 shape).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ServeError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ServeError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ServeError::TooLarge(format!(
                "the request body is larger than the limit: {}",
                r.body_text()
            )),
            StatusCode::UNPROCESSABLE_ENTITY => ServeError::Unprocessable(r.body_text()),
            _ => ServeError::BadRequest(r.body_text()),
        }
    }
}

/// Query parameters whose rejections are JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ServeError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ServeError {
    fn from(r: QueryRejection) -> Self {
        ServeError::BadRequest(r.body_text())
    }
}

/// Path parameters whose rejections are JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ServeError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ServeError {
    fn from(r: PathRejection) -> Self {
        ServeError::BadRequest(r.body_text())
    }
}

/// Options of list routes (`/v1/recommend/{user}`, `/v1/popular`, `/v1/latest`, similar).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items to return (default 10).
    #[serde(default = "ten")]
    pub n: usize,
    /// Items to skip: the next page starts at `offset + n` and never repeats an item.
    #[serde(default)]
    pub offset: usize,
    /// Comma-separated categories the items must have (any, or all with `match=all`).
    #[serde(default)]
    pub category: Option<String>,
    /// `any` (default) or `all`.
    #[serde(default, rename = "match")]
    pub match_: Option<String>,
    /// Comma-separated item ids never to return.
    #[serde(default)]
    pub exclude: Option<String>,
    /// Return items the user has interacted with (default false).
    #[serde(default)]
    pub include_seen: bool,
    /// Add the reasons of each item (default false).
    #[serde(default)]
    pub explain: bool,
    /// A preview, not shown to the user (the dashboard's lookups, debugging): the list is not
    /// logged as an impression, so it counts in no click-through (default false).
    #[serde(default)]
    pub preview: bool,
}

fn ten() -> usize {
    10
}

fn split_list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Checks a request's list options (`n`, `offset`, `match`, list sizes) and completes them.
fn checked(state: &AppState, mut ask: Ask, match_: Option<&str>) -> Result<Ask> {
    let (n, offset) = (ask.n, ask.offset);
    let max = state.cfg.limits.max_n;
    if n == 0 || n > max {
        return Err(ServeError::Unprocessable(format!("n = {n}: 1 to {max}")));
    }
    if offset.checked_add(n).is_none_or(|e| e > max) {
        return Err(ServeError::Unprocessable(format!(
            "offset + n = {offset} + {n} is above the limit {max}"
        )));
    }
    let all = match match_ {
        None | Some("any") => false,
        Some("all") => true,
        Some(m) => return Err(ServeError::BadRequest(format!("match = {m:?}: any or all"))),
    };
    if ask.exclude.len() > state.cfg.limits.max_batch || ask.categories.len() > 100 {
        return Err(ServeError::Unprocessable(
            "too many excluded items or categories".into(),
        ));
    }
    ask.all = all;
    Ok(ask)
}

impl ListParams {
    fn ask(&self, state: &AppState) -> Result<Ask> {
        let ask = Ask {
            n: self.n,
            offset: self.offset,
            categories: split_list(&self.category),
            all: false,
            exclude: split_list(&self.exclude),
            include_seen: self.include_seen,
            explain: self.explain,
        };
        checked(state, ask, self.match_.as_deref())
    }
}

/// One item of a list.
#[derive(Serialize, ToSchema)]
pub struct ItemOut {
    /// Item id.
    pub id: String,
    /// Score: the model's (personal lists), the count of positive events (popular), the time
    /// (latest), the category affinity (new items).
    pub score: f32,
    /// True for items newer than the model, placed by their categories.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub new: bool,
    /// Why it was recommended (with `explain=true`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<serde_json::Value>,
}

/// A list of recommended items.
#[derive(Serialize, ToSchema)]
pub struct Recommendations {
    /// Id of this response (cite it in feedback as `recommendation`).
    pub id: String,
    /// The user asked for (absent for sessions and lists without a user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The model version that answered (absent when none is loaded).
    pub model_version: Option<i64>,
    /// Why the list is not the model's personal answer: `popular` (unknown user) or `history`
    /// (a user newer than the model, answered from their recent events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold_start: Option<String>,
    /// The running experiment the user is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// Their arm (`interleaved` when the list mixes two arms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<String>,
    /// Items, best first.
    pub items: Vec<ItemOut>,
}

/// What a list was, besides its items: for the response and the impression log.
struct Served {
    route: &'static str,
    user: Option<String>,
    version: Option<i64>,
    cold_start: Option<&'static str>,
    experiment: Option<(String, String)>,
    teams: Option<Vec<u8>>,
    /// Not logged as an impression.
    preview: bool,
}

impl Served {
    fn plain(route: &'static str, user: Option<String>, version: Option<i64>) -> Served {
        Served {
            route,
            user,
            version,
            cold_start: None,
            experiment: None,
            teams: None,
            preview: false,
        }
    }

    /// The same list as a preview (`preview=true`): not logged.
    fn preview(self, preview: bool) -> Served {
        Served { preview, ..self }
    }
}

/// The response of a list, its impression logged.
fn respond(state: &AppState, s: Served, items: Vec<ItemOut>) -> Recommendations {
    let id = response_id();
    if state.impressions.enabled() && !s.preview {
        let teams: Option<String> = s
            .teams
            .as_ref()
            .map(|t| t.iter().map(|&x| if x == 0 { '0' } else { '1' }).collect());
        state.impressions.log(&crate::store::ImpressionRef {
            id: &id,
            user: s.user.as_deref(),
            ts: now(),
            version: s.version,
            experiment: s.experiment.as_ref().map(|e| e.0.as_str()),
            arm: s.experiment.as_ref().map(|e| e.1.as_str()),
            route: s.route,
            items: items.iter().map(|i| i.id.as_str()).collect(),
            teams: teams.as_deref(),
            event_seq: state.committed(),
        });
    }
    let (experiment, arm) = s.experiment.unzip();
    Recommendations {
        id,
        user: s.user,
        model_version: s.version,
        cold_start: s.cold_start.map(str::to_string),
        experiment,
        arm,
        items,
    }
}

fn response_id() -> String {
    format!("r-{:032x}", rand::random::<u128>())
}

fn items_out(state: &AppState, picks: Vec<engine::Pick>) -> Result<Vec<ItemOut>> {
    let cat = state.catalog_read()?;
    Ok(picks
        .into_iter()
        .map(|p| ItemOut {
            id: cat.id(p.item).to_string(),
            score: p.score,
            new: p.new,
            reasons: p.reasons,
        })
        .collect())
}

fn answer_out(state: &AppState, mut s: Served, a: Answer) -> Result<Recommendations> {
    s.cold_start = a.cold_start;
    let items = items_out(state, a.items)?;
    Ok(respond(state, s, items))
}

fn check_id(state: &AppState, what: &str, id: &str) -> Result<()> {
    let max = state.cfg.limits.max_id_bytes;
    if id.is_empty() || id.len() > max || id.chars().any(char::is_control) {
        return Err(ServeError::BadRequest(format!(
            "{what} id: 1 to {max} bytes without control characters, got {} bytes",
            id.len()
        )));
    }
    Ok(())
}

/// Whether the active version knows `user` (and may serve them).
fn in_model(state: &AppState, user: &str) -> bool {
    state
        .active()
        .as_deref()
        .is_some_and(|a| a.loaded.users.get(user).is_some() && !state.masked(user, Some(a)))
}

/// Liveness.
#[utoipa::path(get, path = "/health/live", responses((status = 200, description = "The process answers")))]
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "live" }))
}

/// Readiness: 200 once a model version is loaded, 503 before.
#[utoipa::path(get, path = "/health/ready", responses(
    (status = 200, description = "A model answers"),
    (status = 503, description = "No model yet", body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>> {
    match state.active() {
        Some(a) => Ok(Json(
            serde_json::json!({ "status": "ready", "model_version": a.version }),
        )),
        None => Err(ServeError::NotReady(
            "no model version is loaded yet".into(),
        )),
    }
}

/// Personal recommendations. Unknown users and users without history get popular items
/// (`cold_start: "popular"`), never an error.
#[utoipa::path(get, path = "/v1/recommend/{user}", params(("user" = String, Path, description = "User id"), ListParams),
    responses((status = 200, body = Recommendations), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn recommend(
    State(state): State<AppState>,
    Path(user): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<Json<Recommendations>> {
    check_id(&state, "user", &user)?;
    let ask = p.ask(&state)?;
    let live = state.user_live(&user).await?;
    let policy = state.cfg.merge_policy()?;
    let share = state.cfg.cold_items.share;
    let answer_with = |model: Option<&engine::Active>| -> Result<Answer> {
        let cx = engine::UserContext {
            user: &user,
            live: &live,
            masked: state.masked(&user, model),
        };
        let cat = state.catalog_read()?;
        engine::recommend_user(model, &cat, &cx, &ask, policy, share)
    };
    let served = |version: Option<i64>, experiment: Option<(String, String)>| Served {
        experiment,
        ..Served::plain("recommend", Some(user.clone()), version).preview(p.preview)
    };
    // Opted out: the list anyone unknown gets (popular items), less the items they hid, and
    // outside any experiment.
    if state.opted_out(&user) {
        let mut anonymous = crate::live::UserLive::default();
        anonymous.hidden.clone_from(&live.hidden);
        let cx = engine::UserContext {
            user: &user,
            live: &anonymous,
            masked: true,
        };
        let mut answer = {
            let cat = state.catalog_read()?;
            engine::recommend_user(None, &cat, &cx, &ask, policy, share)?
        };
        answer.cold_start = Some("opted_out");
        let version = state.active().map(|a| a.version);
        return Ok(Json(answer_out(&state, served(version, None), answer)?));
    }
    let route = crate::online::route(state.experiment(), &user);
    let label = route.label();
    match route {
        crate::online::Route::Active => {
            let active = state.active();
            let answer = answer_with(active.as_deref())?;
            Ok(Json(answer_out(
                &state,
                served(active.map(|a| a.version), None),
                answer,
            )?))
        }
        crate::online::Route::Arm { running, arm } => {
            let model = &running.models[arm];
            let answer = answer_with(Some(model))?;
            Ok(Json(answer_out(
                &state,
                served(Some(model.version), label),
                answer,
            )?))
        }
        crate::online::Route::Interleave(running) => {
            let a = answer_with(Some(&running.models[0]))?;
            let b = answer_with(Some(&running.models[1]))?;
            let cold_start = a.cold_start.or(b.cold_start);
            let (picks, teams) = crate::online::interleave(a.items, b.items, ask.n);
            let s = Served {
                teams: Some(teams),
                ..served(None, label)
            };
            let answer = Answer {
                items: picks,
                cold_start,
            };
            Ok(Json(answer_out(&state, s, answer)?))
        }
    }
}

/// A session's request: its recent items.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// Item ids of the session, oldest first.
    pub items: Vec<String>,
    /// Items to return (default 10).
    #[serde(default = "ten")]
    pub n: usize,
    /// Items to skip.
    #[serde(default)]
    pub offset: usize,
    /// Categories the items must have.
    #[serde(default)]
    pub categories: Vec<String>,
    /// `any` (default) or `all`.
    #[serde(default, rename = "match")]
    pub match_: Option<String>,
    /// Item ids never to return.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Return the session's own items too.
    #[serde(default)]
    pub include_seen: bool,
    /// Add reasons.
    #[serde(default)]
    pub explain: bool,
}

/// Recommendations for an anonymous session from its recent items.
#[utoipa::path(post, path = "/v1/recommend/session", request_body = SessionRequest,
    responses((status = 200, body = Recommendations), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn recommend_session(
    State(state): State<AppState>,
    Json(r): Json<SessionRequest>,
) -> Result<Json<Recommendations>> {
    if r.items.len() > state.cfg.limits.max_batch {
        return Err(ServeError::Unprocessable(format!(
            "{} session items: at most {}",
            r.items.len(),
            state.cfg.limits.max_batch
        )));
    }
    let ask = Ask {
        n: r.n,
        offset: r.offset,
        categories: r.categories,
        all: false,
        exclude: r.exclude,
        include_seen: r.include_seen,
        explain: r.explain,
    };
    let ask = checked(&state, ask, r.match_.as_deref())?;
    let active = state.active();
    let answer = {
        let cat = state.catalog_read()?;
        engine::recommend_session(
            active.as_deref(),
            &cat,
            &r.items,
            &ask,
            state.cfg.cold_items.share,
        )?
    };
    Ok(Json(answer_out(
        &state,
        Served::plain("session", None, active.map(|a| a.version)),
        answer,
    )?))
}

/// Items similar to an item (models with the similar-items capability).
#[utoipa::path(get, path = "/v1/items/{item}/similar", params(("item" = String, Path, description = "Item id"), ListParams),
    responses((status = 200, body = Recommendations), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn similar(
    State(state): State<AppState>,
    Path(item): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<Json<Recommendations>> {
    check_id(&state, "item", &item)?;
    let ask = p.ask(&state)?;
    let active = state
        .active()
        .ok_or_else(|| ServeError::NotReady("no model version is loaded yet".into()))?;
    let picks = {
        let cat = state.catalog_read()?;
        engine::similar(&active, &cat, &item, &ask)?
    };
    let items = items_out(&state, picks)?;
    Ok(Json(respond(
        &state,
        Served::plain("similar", None, Some(active.version)).preview(p.preview),
        items,
    )))
}

/// The items with the most positive events.
#[utoipa::path(get, path = "/v1/popular", params(ListParams),
    responses((status = 200, body = Recommendations), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn popular(
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Recommendations>> {
    let ask = p.ask(&state)?;
    let picks = {
        let cat = state.catalog_read()?;
        let (ex, want) = engine::catalog_filter(&cat, &ask);
        engine::popular(&cat, &ex, &want, &ask)
    };
    let items = items_out(&state, picks)?;
    Ok(Json(respond(
        &state,
        Served::plain("popular", None, state.active().map(|a| a.version)).preview(p.preview),
        items,
    )))
}

/// The newest items.
#[utoipa::path(get, path = "/v1/latest", params(ListParams),
    responses((status = 200, body = Recommendations), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn latest(
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Recommendations>> {
    let ask = p.ask(&state)?;
    let picks = {
        let cat = state.catalog_read()?;
        let (ex, want) = engine::catalog_filter(&cat, &ask);
        engine::latest(&cat, &ex, &want, &ask)
    };
    let items = items_out(&state, picks)?;
    Ok(Json(respond(
        &state,
        Served::plain("latest", None, state.active().map(|a| a.version)).preview(p.preview),
        items,
    )))
}

/// One event sent by a client.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// User id.
    pub user: String,
    /// Item id.
    pub item: String,
    /// Event type (configured in `feedback.types`: view, click, cart, purchase, dislike, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Value (a rating, a count); 1 when absent.
    #[serde(default)]
    pub value: Option<f64>,
    /// Unix time in seconds; the time of arrival when absent.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// The `id` of the recommendation response this event follows from.
    #[serde(default)]
    pub recommendation: Option<String>,
}

/// A batch of events.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// The events.
    pub events: Vec<EventIn>,
    /// A key reused on retries: a batch whose key was committed is not counted twice (the
    /// `Idempotency-Key` header does the same).
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// What happened to a batch.
#[derive(Serialize, ToSchema)]
pub struct FeedbackResponse {
    /// Events committed by this request (0 for a duplicate).
    pub accepted: usize,
    /// True when the idempotency key had been committed before: nothing was inserted.
    pub duplicate: bool,
}

/// Inserts feedback events; answers after they are committed (durable) and visible to the
/// next recommendation.
#[utoipa::path(post, path = "/v1/feedback", request_body = FeedbackRequest,
    responses((status = 200, body = FeedbackResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(r): Json<FeedbackRequest>,
) -> Result<Json<FeedbackResponse>> {
    let limits = &state.cfg.limits;
    if r.events.is_empty() {
        return Err(ServeError::Unprocessable("events is empty".into()));
    }
    if r.events.len() > limits.max_batch {
        return Err(ServeError::Unprocessable(format!(
            "{} events in one batch: at most {}",
            r.events.len(),
            limits.max_batch
        )));
    }
    let header_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ServeError::BadRequest("Idempotency-Key is not ASCII".into()))
        })
        .transpose()?;
    let key = match (header_key, r.idempotency_key) {
        (Some(h), Some(b)) if h != b => {
            return Err(ServeError::BadRequest(
                "the Idempotency-Key header and idempotency_key differ".into(),
            ))
        }
        (h, b) => h.or(b),
    };
    if let Some(k) = &key {
        if k.is_empty() || k.len() > limits.max_id_bytes {
            return Err(ServeError::BadRequest(format!(
                "idempotency key: 1 to {} bytes",
                limits.max_id_bytes
            )));
        }
    }
    let t = now();
    let events: Vec<NewEvent> = r
        .events
        .into_iter()
        .map(|e| NewEvent {
            user: e.user,
            item: e.item,
            kind: e.kind,
            value: e.value.unwrap_or(1.0),
            timestamp: e.timestamp.unwrap_or(t),
            recommendation: e.recommendation,
        })
        .collect();
    let events = crate::server::check_events(&state.cfg, events)?;
    let n = events.len();
    let outcome = state.ingest(Batch { events, key }).await?;
    Ok(Json(match outcome {
        BatchOutcome::Inserted { .. } => FeedbackResponse {
            accepted: n,
            duplicate: false,
        },
        BatchOutcome::Duplicate => FeedbackResponse {
            accepted: 0,
            duplicate: true,
        },
    }))
}

/// A user as stored.
#[derive(Serialize, ToSchema)]
pub struct UserOut {
    /// User id.
    pub id: String,
    /// Metadata.
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    /// Stored events.
    pub events: i64,
    /// True when the active model has learnt this user.
    pub in_model: bool,
}

/// A user's metadata and event count.
#[utoipa::path(get, path = "/v1/users/{user}", params(("user" = String, Path, description = "User id")),
    responses((status = 200, body = UserOut), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> Result<Json<UserOut>> {
    check_id(&state, "user", &user)?;
    let (fields, events) = state
        .store
        .user(&user)
        .await?
        .ok_or_else(|| ServeError::NotFound(format!("user {user:?} does not exist")))?;
    let in_model = in_model(&state, &user);
    Ok(Json(UserOut {
        id: user,
        fields,
        events,
        in_model,
    }))
}

/// User metadata to store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// Metadata (any JSON object).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Creates or replaces a user's metadata.
#[utoipa::path(put, path = "/v1/users/{user}", params(("user" = String, Path, description = "User id")), request_body = UserIn,
    responses((status = 200, description = "Stored"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn put_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    Json(u): Json<UserIn>,
) -> Result<Json<serde_json::Value>> {
    check_id(&state, "user", &user)?;
    state
        .store
        .upsert_user(&user, &serde_json::Value::Object(u.fields))
        .await?;
    Ok(Json(serde_json::json!({ "id": user })))
}

/// Forgets a user: their events and metadata are deleted, nothing of theirs is served again,
/// and the next training does not see them (versions trained before never serve them).
#[utoipa::path(delete, path = "/v1/users/{user}", params(("user" = String, Path, description = "User id")),
    responses((status = 200, description = "Forgotten"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> Result<Json<serde_json::Value>> {
    check_id(&state, "user", &user)?;
    if !state.forget(&user).await? {
        return Err(ServeError::NotFound(format!(
            "user {user:?} does not exist"
        )));
    }
    Ok(Json(serde_json::json!({ "id": user, "forgotten": true })))
}

/// An item as stored.
#[utoipa::path(get, path = "/v1/items/{item}", params(("item" = String, Path, description = "Item id")),
    responses((status = 200, body = ItemRow), (status = 404, body = ErrorBody)))]
pub async fn get_item(
    State(state): State<AppState>,
    Path(item): Path<String>,
) -> Result<Json<ItemRow>> {
    check_id(&state, "item", &item)?;
    state
        .store
        .item(&item)
        .await?
        .map(Json)
        .ok_or_else(|| ServeError::NotFound(format!("item {item:?} does not exist")))
}

/// Item metadata to store (the id comes from the path).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// Display title.
    #[serde(default)]
    pub title: Option<String>,
    /// Categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Other metadata.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// When the item appeared (Unix seconds).
    #[serde(default)]
    pub timestamp: Option<i64>,
}

fn check_item(state: &AppState, it: &ItemRow) -> Result<()> {
    check_id(state, "item", &it.id)?;
    if it
        .title
        .as_ref()
        .is_some_and(|t| t.len() > 4096 || t.contains('\0'))
    {
        return Err(ServeError::Unprocessable(format!(
            "item {:?}: a title has at most 4096 bytes and no NUL",
            it.id
        )));
    }
    if it.categories.len() > 1000
        || it.categories.iter().any(|c| {
            c.is_empty()
                || c.len() > state.cfg.limits.max_id_bytes
                || c.chars().any(char::is_control)
        })
    {
        return Err(ServeError::Unprocessable(format!(
            "item {:?}: at most 1000 categories of 1 to {} bytes",
            it.id, state.cfg.limits.max_id_bytes
        )));
    }
    Ok(())
}

async fn store_items(state: &AppState, rows: Vec<ItemRow>) -> Result<()> {
    for r in &rows {
        check_item(state, r)?;
    }
    state.store.upsert_items(&rows).await?;
    let mut cat = state.catalog_write()?;
    let t = now();
    for r in &rows {
        cat.upsert(r, t);
    }
    Ok(())
}

/// Creates or replaces an item; a new item is recommendable at once by its categories.
#[utoipa::path(put, path = "/v1/items/{item}", params(("item" = String, Path, description = "Item id")), request_body = ItemIn,
    responses((status = 200, description = "Stored"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_item(
    State(state): State<AppState>,
    Path(item): Path<String>,
    Json(it): Json<ItemIn>,
) -> Result<Json<serde_json::Value>> {
    let row = ItemRow {
        id: item.clone(),
        title: it.title,
        categories: it.categories,
        fields: it.fields,
        timestamp: it.timestamp,
    };
    store_items(&state, vec![row]).await?;
    Ok(Json(serde_json::json!({ "id": item })))
}

/// Creates or replaces items in one transaction.
#[utoipa::path(post, path = "/v1/items", request_body = Vec<ItemRow>,
    responses((status = 200, description = "Stored"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_items(
    State(state): State<AppState>,
    Json(items): Json<Vec<ItemRow>>,
) -> Result<Json<serde_json::Value>> {
    if items.len() > state.cfg.limits.max_batch {
        return Err(ServeError::Unprocessable(format!(
            "{} items: at most {}",
            items.len(),
            state.cfg.limits.max_batch
        )));
    }
    let n = items.len();
    store_items(&state, items).await?;
    Ok(Json(serde_json::json!({ "stored": n })))
}

/// Deletes an item and its events; it is never recommended again.
#[utoipa::path(delete, path = "/v1/items/{item}", params(("item" = String, Path, description = "Item id")),
    responses((status = 200, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_item(
    State(state): State<AppState>,
    Path(item): Path<String>,
) -> Result<Json<serde_json::Value>> {
    check_id(&state, "item", &item)?;
    if !state.store.delete_item(&item).await? {
        return Err(ServeError::NotFound(format!(
            "item {item:?} does not exist"
        )));
    }
    let mut cat = state.catalog_write()?;
    if let Some(i) = cat.get(&item) {
        cat.delete(i);
    }
    Ok(Json(serde_json::json!({ "id": item, "deleted": true })))
}

/// Model versions, newest first, with their hold-out metrics.
#[utoipa::path(get, path = "/v1/models", responses((status = 200, body = Vec<VersionRow>), (status = 401, body = ErrorBody)))]
pub async fn models(State(state): State<AppState>) -> Result<Json<Vec<VersionRow>>> {
    Ok(Json(state.store.versions().await?))
}

async fn activate_version(state: &AppState, version: i64, why: &str) -> Result<VersionRow> {
    let v = state
        .store
        .versions()
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| ServeError::NotFound(format!("model version {version} does not exist")))?;
    if v.status != "ready" && v.status != "active" {
        return Err(ServeError::Unprocessable(format!(
            "model version {version} is {} and cannot be activated",
            v.status
        )));
    }
    state.activate(&v, Some(why)).await?;
    Ok(VersionRow {
        status: "active".into(),
        ..v
    })
}

/// Makes a kept version active (atomically: requests in flight finish on the old one).
#[utoipa::path(post, path = "/v1/models/{version}/activate", params(("version" = i64, Path, description = "Version")),
    responses((status = 200, body = VersionRow), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    Path(version): Path<i64>,
) -> Result<Json<VersionRow>> {
    Ok(Json(activate_version(&state, version, "activated").await?))
}

/// Activates the version that was active before the current one.
#[utoipa::path(post, path = "/v1/models/rollback",
    responses((status = 200, body = VersionRow), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rollback(State(state): State<AppState>) -> Result<Json<VersionRow>> {
    let v =
        state.store.previous_version().await?.ok_or_else(|| {
            ServeError::NotFound("no earlier version is kept to roll back to".into())
        })?;
    Ok(Json(activate_version(&state, v, "rolled back").await?))
}

/// Trains a new version now and promotes it if the hold-out gate passes; answers when done.
#[utoipa::path(post, path = "/v1/models/retrain",
    responses((status = 200, body = VersionRow), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn retrain(State(state): State<AppState>) -> Result<Json<VersionRow>> {
    Ok(Json(state.retrain("requested").await?))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn prometheus(State(state): State<AppState>) -> Response {
    if let Ok(live) = state.lock_live() {
        metrics::gauge!("reco_live_users").set(live.len() as f64);
    }
    if let Ok(cat) = state.catalog_read() {
        metrics::gauge!("reco_catalog_items").set(cat.len() as f64);
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::telemetry::render(),
    )
        .into_response()
}

/// The OpenAPI document of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "reco serve",
        description = "Recommendations, feedback, items, users and model versions over HTTP."
    ),
    paths(
        live,
        ready,
        recommend,
        recommend_session,
        similar,
        popular,
        latest,
        feedback,
        get_user,
        put_user,
        delete_user,
        get_item,
        put_item,
        post_items,
        delete_item,
        models,
        activate,
        rollback,
        retrain,
        online::put_opt_out,
        online::export_user,
        online::drift,
        online::experiments,
        online::start_experiment,
        online::experiment_results,
        online::stop_experiment,
        online::impression_stats,
        online::quality,
        prometheus
    ),
    components(schemas(
        ErrorBody,
        Recommendations,
        ItemOut,
        SessionRequest,
        EventIn,
        FeedbackRequest,
        FeedbackResponse,
        UserOut,
        UserIn,
        ItemIn,
        ItemRow,
        VersionRow,
        online::OptOut,
        online::UserExport,
        crate::drift::DriftReport,
        ExperimentRow,
        ExperimentSpec,
        ExperimentResults,
        ImpressionStats,
        crate::online::QualityReport
    ))
)]
pub struct ApiDoc;

/// `/openapi.json`.
pub async fn openapi() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}

/// Which key a route needs.
#[derive(Clone, Copy)]
pub enum Access {
    /// Reads: the read key if one is set (the write key works too).
    Read,
    /// Writes and admin: the write key if one is set.
    Write,
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v);
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn key_matches(given: &str, key: &str) -> bool {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    // Comparing digests keeps the time independent of the length and content of both.
    let a = sha2::Sha256::digest(given.as_bytes());
    let b = sha2::Sha256::digest(key.as_bytes());
    a.ct_eq(&b).into()
}

/// Checks the API key of a request.
pub fn authorize(state: &AppState, access: Access, headers: &HeaderMap) -> Result<()> {
    let keys = &state.cfg.keys;
    let needed: Vec<&String> = match access {
        Access::Read => match &keys.read {
            Some(r) => [Some(r), keys.write.as_ref()]
                .into_iter()
                .flatten()
                .collect(),
            None => return Ok(()),
        },
        Access::Write => match &keys.write {
            Some(w) => vec![w],
            None => return Ok(()),
        },
    };
    let Some(given) = presented(headers) else {
        return Err(ServeError::Unauthorized(
            "this route needs an API key (header X-API-Key or Authorization: Bearer)".into(),
        ));
    };
    // Every key is compared, so the time does not say which one matched.
    let ok = needed
        .iter()
        .fold(false, |acc, k| acc | key_matches(given, k));
    if ok {
        Ok(())
    } else {
        Err(ServeError::Unauthorized(
            "the API key is not valid for this route".into(),
        ))
    }
}

/// Middleware: errors made by the HTTP layers rather than by a handler (the request timeout's
/// 408, the router's 405 for a method a route does not take, a body limit's 413) come with
/// empty or text bodies; they become JSON errors like every other, keeping their headers
/// (`Allow` on a 405).
pub async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "the request took longer than limits.timeout_ms".to_string(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = resp
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .map_or(String::new(), |a| format!(": it takes {a}"));
            let method: String = method.as_str().chars().take(32).collect();
            (
                "method_not_allowed",
                format!("this route does not take {method}{allow} (the routes are listed at /openapi.json)"),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            "the request body is larger than limits.max_body_bytes".to_string(),
        ),
        _ => (
            "http",
            status
                .canonical_reason()
                .unwrap_or("the request failed")
                .to_string(),
        ),
    };
    let body = crate::error::ErrorBody {
        error: crate::error::ErrorDetail {
            status: status.as_u16(),
            code: code.into(),
            message,
        },
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Middleware: records latency per route and status.
pub async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| p.as_str().to_string());
    // Only standard methods become labels: any other token would add a series per value.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS" | "PATCH") => m,
        _ => "other",
    }
    .to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("reco_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("reco_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    resp
}
