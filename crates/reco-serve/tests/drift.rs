//! Drift: events drawn like the training data never mark the version stale, whatever the seed;
//! within one window, a new category taking 30% of the events does, and so do new users taking
//! 30% of them, and values drawn from another distribution.

mod common;

use axum::http::StatusCode;
use common::{data, start, Db};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

on_both!(a_new_category_is_flagged_and_sampling_noise_is_not);

/// The drift report, read while no other test sets the gauges.
async fn drift(s: &common::Server) -> (StatusCode, Value) {
    let _gauges = common::GAUGES.lock().await;
    s.call("GET", "/v1/monitoring/drift", None).await
}

async fn send(s: &common::Server, events: Vec<Value>) {
    for chunk in events.chunks(500) {
        let (st, v) = s
            .call("POST", "/v1/feedback", Some(json!({ "events": chunk })))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
}

async fn a_new_category_is_flagged_and_sampling_noise_is_not(db: Db) {
    let ds = data();
    let Some(s) = start(db, Some(ds.clone()), |c| {
        c.drift.window = 1000;
        c.drift.min_events = 500;
        c.monitoring.check_seconds = 0;
    })
    .await
    else {
        return;
    };
    s.retrain().await;
    let pairs: Vec<(String, String, f32)> = ds
        .interactions
        .iter()
        .map(|(u, i, v)| (ds.users.id(u).to_string(), ds.items.id(i).to_string(), v))
        .collect();
    let kind = reco_serve::seed::seed_kind(ds.feedback);
    let like_training = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| -> Vec<Value> {
        (0..n)
            .map(|_| {
                let (u, i, v) = &pairs[rng.gen_range(0..pairs.len())];
                json!({"user": u, "item": i, "type": kind, "value": v})
            })
            .collect()
    };
    let psi = |r: &Value, field: &str| -> f64 {
        r["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["field"] == field))
            .and_then(|x| x["psi"].as_f64())
            .expect("field")
    };
    for seed in 1..=5 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        send(&s, like_training(&mut rng, 1000)).await;
        let (st, r) = drift(&s).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["events"], 1000);
        assert_eq!(r["stale"], false, "seed {seed}: {r}");
        for field in ["category", "popularity", "user_activity", "value"] {
            assert!(psi(&r, field) < 0.05, "seed {seed}, {field}: {r}");
        }
    }
    // New items of a new category take 30% of the traffic.
    let items: Vec<Value> = (0..20)
        .map(|k| json!({"id": format!("fresh-{k}"), "categories": ["fresh"]}))
        .collect();
    let (st, v) = s.call("POST", "/v1/items", Some(json!(items))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let events: Vec<Value> = (0..1000)
        .map(|k| {
            if rng.gen::<f64>() < 0.3 {
                json!({"user": format!("{}", k % 100), "item": format!("fresh-{}", k % 20), "type": kind})
            } else {
                like_training(&mut rng, 1).remove(0)
            }
        })
        .collect();
    send(&s, events).await;
    // The gauges are the process's: the other backend's variant must not set them between
    // this call and the read of /metrics.
    let gauges = common::GAUGES.lock().await;
    let (_, r) = s.call("GET", "/v1/monitoring/drift", None).await;
    assert_eq!(r["stale"], true, "{r}");
    assert!(psi(&r, "category") > 0.2, "{r}");
    // The new items are also new to the version's popularity bands.
    assert!(psi(&r, "popularity") > 0.2, "{r}");
    let (_, text) = s.call("GET", "/metrics", None).await;
    assert!(text
        .as_str()
        .unwrap_or_default()
        .contains("reco_model_stale 1"));
    drop(gauges);
    // After a retrain the fresh items are in the version: none of the traffic is new to it.
    s.retrain().await;
    let (_, r) = drift(&s).await;
    let current = r["fields"][1]["current"].as_array().expect("bands");
    assert!(current.iter().all(|b| b[0] != "new"), "{r}");
    // Users the version has never seen act on ordinary items: 30% of the events.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut events = like_training(&mut rng, 1000);
    for (k, e) in events.iter_mut().enumerate() {
        if rng.gen::<f64>() < 0.3 {
            e["user"] = json!(format!("newcomer-{}", k % 50));
        }
    }
    send(&s, events).await;
    let (_, r) = drift(&s).await;
    assert_eq!(r["stale"], true, "{r}");
    assert!(psi(&r, "user_activity") > 0.2, "{r}");
    // Not category: the fresh category the version trained on is absent from this traffic,
    // which is drift of its own. The items are the training's, so their bands hold.
    assert!(psi(&r, "popularity") < 0.1, "{r}");
    // The same pairs with values from another distribution: ten times the training value.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let mut events = like_training(&mut rng, 1000);
    for e in &mut events {
        e["value"] = json!(e["value"].as_f64().expect("value") * 10.0 + 1.0);
    }
    send(&s, events).await;
    let (_, r) = drift(&s).await;
    assert!(psi(&r, "value") > 0.2, "{r}");
    assert!(psi(&r, "user_activity") < 0.05, "{r}");
}
