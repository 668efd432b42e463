//! Quality and bias over time: the figures of `/v1/monitoring/quality` recomputed here from the
//! lists the server answered, the clicks sent and the seed data; alerts fire past their
//! thresholds and show in the gauges.

mod common;

use axum::http::StatusCode;
use common::{data, item_ids, start, Db};
use rustc_hash::FxHashMap;
use serde_json::{json, Value};

on_both!(quality_matches_a_recomputation_and_alerts_fire);

async fn quality_matches_a_recomputation_and_alerts_fire(db: Db) {
    let ds = data();
    let Some(s) = start(db, Some(ds.clone()), |c| {
        c.monitoring.check_seconds = 0;
        c.monitoring.group_field = Some("segment".into());
        c.monitoring.min_impressions = 20;
        c.monitoring.min_ctr = Some(0.6);
        c.monitoring.max_group_gap = Some(0.5);
        c.monitoring.min_coverage = Some(0.01);
    })
    .await
    else {
        return;
    };
    s.retrain().await;
    // Even users are in segment a and click the first item of every list; odd users never click.
    let mut lists: Vec<(usize, Vec<String>)> = Vec::new();
    let mut clicked: Vec<String> = Vec::new();
    for u in 0..60usize {
        let segment = if u % 2 == 0 { "a" } else { "b" };
        let (st, v) = s
            .call(
                "PUT",
                &format!("/v1/users/{u}"),
                Some(json!({"fields": {"segment": segment}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, v) = s.call("GET", &format!("/v1/recommend/{u}?n=5"), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let items = item_ids(&v);
        if u % 2 == 0 {
            let event = json!({"events": [{"user": u.to_string(), "item": items[0],
                "type": "click", "recommendation": v["id"]}]});
            let (st, r) = s.call("POST", "/v1/feedback", Some(event)).await;
            assert_eq!(st, StatusCode::OK, "{r}");
            clicked.push(items[0].clone());
        }
        lists.push((u, items));
    }
    // A preview is not an impression.
    let (st, _) = s.call("GET", "/v1/recommend/1?preview=true", None).await;
    assert_eq!(st, StatusCode::OK);

    // The gauges are the process's: held from the call that sets them to their read.
    let gauges = common::GAUGES.lock().await;
    let (st, q) = s
        .call("GET", "/v1/monitoring/quality?seconds=3600&buckets=6", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{q}");
    let w = &q["window"];
    assert_eq!(w["impressions"], 60, "{w}");
    assert_eq!(w["ctr"]["successes"], 30, "{w}");
    let series = q["series"].as_array().expect("series");
    assert_eq!(series.len(), 6);
    let in_series: u64 = series
        .iter()
        .map(|p| p["impressions"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(in_series, 60, "every list falls in one bucket");
    assert_eq!(q["groups"], "segment");

    // Popularity: the seed's events per item, plus the clicks just sent.
    let mut pop: FxHashMap<String, f64> = FxHashMap::default();
    let mut history: FxHashMap<String, Vec<String>> = FxHashMap::default();
    for (u, i, _) in ds.interactions.iter() {
        *pop.entry(ds.items.id(i).to_string()).or_default() += 1.0;
        history
            .entry(ds.users.id(u).to_string())
            .or_default()
            .push(ds.items.id(i).to_string());
    }
    for i in &clicked {
        *pop.entry(i.clone()).or_default() += 1.0;
    }
    // Sorted: ties at a group's edge go by id.
    let mut catalogue: Vec<String> = ds.items.ids().to_vec();
    catalogue.sort_unstable();
    let f = |v: &Value| v.as_f64().expect("number");
    // Coverage: distinct items shown over the catalogue.
    let distinct: std::collections::BTreeSet<&String> =
        lists.iter().flat_map(|(_, l)| l.iter()).collect();
    let coverage = distinct.len() as f64 / catalogue.len() as f64;
    assert!((f(&w["coverage"]) - coverage).abs() < 1e-9, "{w}");
    // Popularity lift: per list, the mean popularity shown over the user's history's, minus 1.
    let mean = |ids: &[String]| ids.iter().map(|i| pop[i]).sum::<f64>() / ids.len() as f64;
    let lifts: Vec<f64> = lists
        .iter()
        .map(|(u, l)| mean(l) / mean(&history[&u.to_string()]) - 1.0)
        .collect();
    let lift = lifts.iter().sum::<f64>() / lifts.len() as f64;
    assert!(
        (f(&w["popularity_lift"]) - lift).abs() < 1e-9,
        "{w} against {lift}"
    );
    // Exposure: the audit's groups over the catalogue, 1/log2(position + 1) per slot.
    let counts: Vec<f64> = catalogue
        .iter()
        .map(|i| pop.get(i).copied().unwrap_or(0.0))
        .collect();
    let groups = reco_eval::fairness::popularity_groups(&counts, 0.2, 0.2);
    let group: FxHashMap<&String, u8> = catalogue.iter().zip(groups).collect();
    let mut exposure = [0.0f64; 3];
    for (_, l) in &lists {
        for (p, i) in l.iter().enumerate() {
            exposure[usize::from(group[i])] += 1.0 / (p as f64 + 2.0).log2();
        }
    }
    let total: f64 = exposure.iter().sum();
    for (k, name) in ["head", "mid", "tail"].iter().enumerate() {
        let got = w["exposure"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e[0] == *name))
            .map(|e| f(&e[1]))
            .expect("group");
        assert!((got - exposure[k] / total).abs() < 1e-9, "{name}: {w}");
    }
    // Click-through by segment: a all, b none.
    assert_eq!(
        w["by_group"],
        json!([
            ["a", {"successes": 30, "trials": 30, "rate": 1.0, "low": w["by_group"][0][1]["low"], "high": 1.0}],
            ["b", {"successes": 0, "trials": 30, "rate": 0.0, "low": 0.0, "high": w["by_group"][1][1]["high"]}]
        ])
    );
    // Alerts: CTR 0.5 < 0.6 and a gap of 1 > 0.5 fire; coverage does not.
    let firing: Vec<&str> = q["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["firing"] == true)
        .map(|a| a["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(firing, ["ctr", "group_gap"], "{q}");
    let (_, text) = s.call("GET", "/metrics", None).await;
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains("reco_alert{name=\"group_gap\"} 1"), "{text}");
    assert!(
        text.contains("reco_quality_group_ctr{group=\"a\"} 1"),
        "{text}"
    );
    drop(gauges);

    let (st, v) = s
        .call("GET", "/v1/monitoring/quality?buckets=0", None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}
