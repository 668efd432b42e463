//! Drift: events drawn like the training data never mark the version stale, whatever the seed;
//! a new category taking 30% of the events does, within one window.

mod common;

use axum::http::StatusCode;
use common::{data, start, Db};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

on_both!(a_new_category_is_flagged_and_sampling_noise_is_not);

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
    })
    .await
    else {
        return;
    };
    s.retrain().await;
    let pairs: Vec<(String, String)> = ds
        .interactions
        .iter()
        .map(|(u, i, _)| (ds.users.id(u).to_string(), ds.items.id(i).to_string()))
        .collect();
    let like_training = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| -> Vec<Value> {
        (0..n)
            .map(|_| {
                let (u, i) = &pairs[rng.gen_range(0..pairs.len())];
                json!({"user": u, "item": i, "type": "view"})
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
        let (st, r) = s.call("GET", "/v1/monitoring/drift", None).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["events"], 1000);
        assert_eq!(r["stale"], false, "seed {seed}: {r}");
        assert!(
            psi(&r, "category") < 0.05 && psi(&r, "popularity") < 0.05,
            "{r}"
        );
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
                json!({"user": format!("{}", k % 100), "item": format!("fresh-{}", k % 20), "type": "view"})
            } else {
                like_training(&mut rng, 1).remove(0)
            }
        })
        .collect();
    send(&s, events).await;
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
    // After a retrain the fresh items are in the version: none of the traffic is new to it.
    s.retrain().await;
    let (_, r) = s.call("GET", "/v1/monitoring/drift", None).await;
    let current = r["fields"][1]["current"].as_array().expect("bands");
    assert!(current.iter().all(|b| b[0] != "new"), "{r}");
}
