//! The online loop against a simulated population: users with known tastes click on what they
//! are shown (a position-based click model), an A/B test between a good model and a degraded
//! one finds the good one and its guard rail stops the degraded arm, interleaving prefers the
//! good one, and every list served is in the impression log.

mod common;

use axum::http::StatusCode;
use common::{restart, start, Db};
use rand::{Rng, SeedableRng};
use reco_core::loaders::{DatasetBuilder, LoadOptions};
use serde_json::{json, Value};

on_both!(
    ab_test_and_interleaving_find_the_better_model,
    versions_an_experiment_serves_are_not_retired
);

/// `retrain.keep_versions` deletes old artifacts, but not those of the running experiment's
/// arms: the experiment keeps serving, and resumes after a restart.
async fn versions_an_experiment_serves_are_not_retired(db: Db) {
    let Some(s) = start(db, Some(common::data()), |c| {
        c.retrain.keep_versions = 2;
        c.experiments.check_seconds = 0;
    })
    .await
    else {
        return;
    };
    s.retrain().await;
    s.retrain().await;
    let spec = json!({"name": "old-vs-new", "arms": [
        {"name": "new", "version": 2}, {"name": "old", "version": 1}]});
    let (st, v) = s.call("POST", "/v1/experiments", Some(spec)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let status = |v: &Value, version: i64| {
        v.as_array()
            .and_then(|a| a.iter().find(|r| r["version"] == version))
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
    };
    // Version 3 makes version 1 the third kept one: past keep_versions, but pinned.
    s.retrain().await;
    let (_, models) = s.call("GET", "/v1/models", None).await;
    assert_eq!(status(&models, 1).as_deref(), Some("ready"), "{models}");
    assert_eq!(status(&models, 3).as_deref(), Some("active"), "{models}");
    let common::Server {
        cfg, dir, state, ..
    } = s;
    state.store.close().await;
    let s = restart(cfg, dir, None).await;
    let mut arms = std::collections::HashSet::new();
    for u in 0..40 {
        let (_, v) = s.call("GET", &format!("/v1/recommend/{u}"), None).await;
        arms.insert(v["arm"].as_str().unwrap_or_default().to_string());
    }
    assert!(arms.contains("old") && arms.contains("new"), "{arms:?}");
    // Stopped, the experiment no longer pins them.
    s.call("POST", "/v1/experiments/old-vs-new/stop", None)
        .await;
    s.retrain().await;
    let (_, models) = s.call("GET", "/v1/models", None).await;
    assert_eq!(status(&models, 1).as_deref(), Some("retired"), "{models}");
}

const USERS: usize = 240;
const ITEMS: usize = 60;
const CLUSTERS: usize = 4;
const N: usize = 5;

/// The true click probability of `user` on `item` once examined: 0.6 in the user's favourite
/// cluster, 0.05 elsewhere.
fn relevance(user: usize, item: usize) -> f64 {
    if item % CLUSTERS == user % CLUSTERS {
        0.6
    } else {
        0.05
    }
}

/// Examination probability at a position (0-based): position bias.
fn examined(p: usize) -> f64 {
    1.0 / (1.0 + p as f64).sqrt()
}

/// A history drawn from the tastes: 12 views per user, 80% in the favourite cluster.
fn history(rng: &mut rand_chacha::ChaCha8Rng) -> reco_core::Dataset {
    let mut b = DatasetBuilder::new(false);
    for u in 0..USERS {
        let uid = b.users.get_or_insert(&format!("u{u}"));
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 12 {
            let own = rng.gen::<f64>() < 0.8;
            let k = rng.gen_range(0..ITEMS / CLUSTERS);
            let item = if own {
                k * CLUSTERS + u % CLUSTERS
            } else {
                rng.gen_range(0..ITEMS)
            };
            if seen.insert(item) {
                let iid = b.items.get_or_insert(&format!("i{item}"));
                b.triplets.push(uid, iid, 1.0, None);
            }
        }
    }
    b.finish("tastes", &LoadOptions::default()).expect("data")
}

/// Every user asks for a list `visits` times and clicks on it by the click model, citing the
/// list. Returns the responses.
async fn simulate(
    s: &common::Server,
    rng: &mut rand_chacha::ChaCha8Rng,
    visits: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..visits {
        for u in 0..USERS {
            let (st, v) = s
                .call("GET", &format!("/v1/recommend/u{u}?n={N}"), None)
                .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            let mut events = Vec::new();
            for (p, it) in v["items"].as_array().expect("items").iter().enumerate() {
                let id = it["id"].as_str().expect("id");
                let item: usize = id[1..].parse().expect("item number");
                if rng.gen::<f64>() < examined(p) * relevance(u, item) {
                    events.push(json!({"user": format!("u{u}"), "item": id, "type": "click",
                                       "recommendation": v["id"]}));
                }
            }
            if !events.is_empty() {
                let (st, r) = s
                    .call("POST", "/v1/feedback", Some(json!({ "events": events })))
                    .await;
                assert_eq!(st, StatusCode::OK, "{r}");
            }
            out.push(v);
        }
    }
    out
}

async fn ab_test_and_interleaving_find_the_better_model(db: Db) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let data = history(&mut rng);
    // Version 1: the degraded model, popularity (the same list for everyone).
    let Some(s) = start(db, Some(data), |c| {
        c.model = reco_serve::config::ModelSource::Inline(json!({"model": "popularity"}));
        c.experiments.check_seconds = 0;
    })
    .await
    else {
        return;
    };
    assert_eq!(s.retrain().await["version"], 1);
    // Version 2: implicit ALS on the same history, after a restart with that model.
    let common::Server {
        cfg, dir, state, ..
    } = s;
    state.store.close().await;
    let mut cfg = cfg;
    cfg.model = reco_serve::config::ModelSource::Inline(
        json!({"model": "ials", "factors": 8, "epochs": 10, "regularization": 0.05, "alpha": 4.0}),
    );
    let s = restart(cfg, dir, None).await;
    assert_eq!(s.retrain().await["version"], 2);

    // A/B: control is the good model, the candidate the degraded one.
    let spec = json!({"name": "ab1", "arms": [
        {"name": "control", "version": 2}, {"name": "candidate", "version": 1}]});
    let (st, v) = s.call("POST", "/v1/experiments", Some(spec.clone())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "running");
    // One experiment at a time.
    let other = json!({"name": "ab2", "arms": [
        {"name": "a", "version": 2}, {"name": "b", "version": 1}]});
    assert_eq!(
        s.call("POST", "/v1/experiments", Some(other)).await.0,
        StatusCode::CONFLICT
    );
    let served = simulate(&s, &mut rng, 3).await;
    let arm_of = |v: &Value| v["arm"].as_str().unwrap_or_default().to_string();
    let n_candidate = served.iter().filter(|v| arm_of(v) == "candidate").count();
    // Assignment is about half and half, and fixed per user.
    assert!((250..470).contains(&n_candidate), "{n_candidate}");
    for v in served.iter().filter(|v| arm_of(v) == "candidate") {
        assert_eq!(v["model_version"], 1);
        assert_eq!(v["experiment"], "ab1");
    }

    let (st, r) = s.call("GET", "/v1/experiments/ab1", None).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let arms = r["arms"].as_array().expect("arms");
    // Every list served is in the log, on its arm.
    let logged: u64 = arms
        .iter()
        .map(|a| a["impressions"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(logged as usize, served.len());
    assert_eq!(arms[1]["impressions"].as_u64(), Some(n_candidate as u64));
    let ctr = |a: &Value| a["ctr"]["rate"].as_f64().expect("ctr");
    assert!(ctr(&arms[0]) > ctr(&arms[1]) + 0.1, "{r}");
    let vs = &arms[1]["vs_control"];
    assert!(vs["diff"].as_f64().expect("diff") < 0.0);
    assert!(vs["p_value"].as_f64().expect("p") < 0.001, "{vs}");
    assert!(vs["p_sequential"].as_f64().expect("p") < 0.05, "{vs}");
    // Position bias: the first position is clicked more than the last.
    let pos = arms[0]["ctr_by_position"].as_array().expect("positions");
    assert!(
        pos[0]["rate"].as_f64() > pos[N - 1]["rate"].as_f64(),
        "{pos:?}"
    );
    // The guard rail stopped the degraded arm: its users now get control's lists.
    assert_eq!(arms[1]["stopped"], true, "{r}");
    assert!(r["experiment"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("candidate"));
    assert!(
        r["offline"]["candidate"]["candidate"]["ndcg@10"].is_object(),
        "{r}"
    );
    let moved = served
        .iter()
        .find(|v| arm_of(v) == "candidate")
        .and_then(|v| v["user"].as_str())
        .expect("a candidate user");
    let (_, v) = s
        .call("GET", &format!("/v1/recommend/{moved}?n={N}"), None)
        .await;
    assert_eq!(
        (arm_of(&v).as_str(), v["model_version"].as_i64()),
        ("control", Some(2))
    );

    // Lately served lists, broken down.
    let (st, stats) = s
        .call("GET", "/v1/impressions/stats?seconds=3600", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{stats}");
    assert_eq!(stats["impressions"].as_u64(), Some(served.len() as u64 + 1));
    assert!(stats["by_popularity"]
        .as_array()
        .is_some_and(|b| !b.is_empty()));

    let (st, v) = s.call("POST", "/v1/experiments/ab1/stop", None).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("stopped"))
    );
    let (_, v) = s.call("GET", "/v1/recommend/u0", None).await;
    assert!(v["experiment"].is_null());

    // Interleaving the two: the good model's items get the clicks.
    let spec = json!({"name": "il", "design": "interleave", "arms": [
        {"name": "degraded", "version": 1}, {"name": "good", "version": 2}]});
    let (st, v) = s.call("POST", "/v1/experiments", Some(spec)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let served = simulate(&s, &mut rng, 1).await;
    assert!(served.iter().all(|v| v["arm"] == "interleaved"));
    let (_, r) = s.call("GET", "/v1/experiments/il", None).await;
    let p = &r["preference"];
    assert!(p["wins_second"].as_u64() > p["wins_first"].as_u64(), "{p}");
    assert!(p["p_value"].as_f64().expect("p") < 0.01, "{p}");

    // The running experiment survives a restart.
    let common::Server {
        cfg, dir, state, ..
    } = s;
    state.impressions.flush().await;
    state.store.close().await;
    let s = restart(cfg, dir, None).await;
    let (_, v) = s.call("GET", "/v1/recommend/u3", None).await;
    assert_eq!(v["experiment"], "il");
    let (st, v) = s.call("GET", "/v1/experiments", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v.as_array().map(Vec::len), Some(2));
}
