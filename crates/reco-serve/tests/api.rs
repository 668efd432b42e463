//! Every route, success and error statuses, on SQLite and on PostgreSQL.

mod common;

use std::collections::HashSet;

use axum::http::StatusCode;
use common::{data, item_ids, start, Db};
use serde_json::{json, Value};

on_both!(
    health_openapi_and_metrics,
    an_event_changes_the_next_answer,
    pages_never_repeat_an_item,
    a_retried_batch_counts_once,
    forgotten_users_are_gone,
    new_items_are_recommended_by_category_and_deleted_ones_never,
    bad_requests_get_clear_json_errors,
    keys_guard_reads_and_writes,
    versions_activate_roll_back_and_gate,
    everything_acknowledged_survives_a_restart,
    lists_sessions_and_similar_items,
    a_retrain_swaps_atomically_under_concurrent_requests,
    replicas_on_one_database_follow_each_other,
    the_gate_compares_on_events_the_active_version_has_not_seen,
    a_pipeline_file_is_served_like_a_model,
);

async fn health_openapi_and_metrics(db: Db) {
    let Some(s) = start(db, None, |_| {}).await else {
        return;
    };
    assert_eq!(s.call("GET", "/health/live", None).await.0, StatusCode::OK);
    let (st, v) = s.call("GET", "/health/ready", None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "no model yet: {v}");
    assert_eq!(v["error"]["code"], "not_ready");
    // Without a model every user still gets an answer: popular items, flagged.
    s.send(&[("a", "x", "view"), ("b", "x", "view"), ("b", "y", "view")])
        .await;
    let (st, v) = s.call("GET", "/v1/recommend/c", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["cold_start"], "popular");
    assert_eq!(item_ids(&v), vec!["x", "y"]);
    assert!(v["model_version"].is_null());
    s.retrain().await;
    let (st, v) = s.call("GET", "/health/ready", None).await;
    assert_eq!((st, v["model_version"].as_i64()), (StatusCode::OK, Some(1)));

    let (st, doc) = s.call("GET", "/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    for path in [
        "/health/live",
        "/health/ready",
        "/v1/recommend/{user}",
        "/v1/recommend/session",
        "/v1/items/{item}/similar",
        "/v1/popular",
        "/v1/latest",
        "/v1/feedback",
        "/v1/users/{user}",
        "/v1/items/{item}",
        "/v1/items",
        "/v1/models",
        "/v1/models/{version}/activate",
        "/v1/models/rollback",
        "/v1/models/retrain",
        "/v1/experiments",
        "/v1/experiments/{name}",
        "/v1/experiments/{name}/stop",
        "/v1/impressions/stats",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    let (st, text) = s.call("GET", "/metrics", None).await;
    assert_eq!(st, StatusCode::OK);
    let text = text.as_str().unwrap_or_default().to_string();
    for m in [
        "reco_http_request_duration_seconds_bucket",
        "reco_events_ingested_total",
        "reco_model_version",
        "reco_training_seconds",
        "reco_live_cache_hits_total",
    ] {
        assert!(text.contains(m), "{m} missing from /metrics");
    }
    let (st, v) = s.call("GET", "/v2/nothing", None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // A route that exists, with a method it does not take: the router's 405, as JSON.
    let (st, v) = s.call("PATCH", "/v1/recommend/c", None).await;
    assert_eq!(
        (
            st,
            v["error"]["code"].as_str(),
            v["error"]["status"].as_u64()
        ),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            Some("method_not_allowed"),
            Some(405)
        )
    );
}

async fn an_event_changes_the_next_answer(db: Db) {
    let Some(s) = start(db, Some(data()), |_| {}).await else {
        return;
    };
    s.retrain().await;
    let before = s.call("GET", "/v1/recommend/7?n=10", None).await.1;
    let ids = item_ids(&before);
    assert_eq!(ids.len(), 10);
    // A purchase: the item leaves the list at once, and the folded-in vector moves the scores.
    s.send(&[("7", &ids[0], "purchase")]).await;
    let after = s.call("GET", "/v1/recommend/7?n=10", None).await.1;
    let after_ids = item_ids(&after);
    assert!(!after_ids.contains(&ids[0]), "{after_ids:?}");
    let score = |v: &serde_json::Value, id: &str| {
        v["items"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == id))
            .and_then(|i| i["score"].as_f64())
    };
    let moved = ids[1..]
        .iter()
        .filter_map(|id| Some((score(&before, id)?, score(&after, id)?)))
        .any(|(a, b)| (a - b).abs() > 1e-6);
    assert!(moved, "fold-in changed no score");
    // A dislike hides the item even when seen items are asked for.
    s.send(&[("7", &after_ids[0], "dislike")]).await;
    let seen = s.ids("/v1/recommend/7?n=80&include_seen=true").await;
    assert!(!seen.contains(&after_ids[0]));
    assert!(
        seen.contains(&ids[0]),
        "include_seen brings the purchase back"
    );
    // A user the model has never seen is answered from their events, not with an error.
    s.send(&[("stranger", &ids[2], "view"), ("stranger", &ids[3], "cart")])
        .await;
    let (st, v) = s.call("GET", "/v1/recommend/stranger?n=5", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["cold_start"], "history");
    let got = item_ids(&v);
    assert_eq!(got.len(), 5);
    assert!(!got.contains(&ids[2]) && !got.contains(&ids[3]));
    // The next training learns them; the live state above it is dropped.
    let row = s.retrain().await;
    assert_eq!(row["version"], 2);
    let (_, v) = s.call("GET", "/v1/recommend/stranger?n=5", None).await;
    assert!(v.get("cold_start").is_none(), "{v}");
    assert!(!item_ids(&v).contains(&ids[2]));
    assert_eq!(
        s.state.lock_live().map(|l| l.len()).ok(),
        Some(1),
        "only the dislike stays live"
    );
}

async fn pages_never_repeat_an_item(db: Db) {
    let Some(s) = start(db, Some(data()), |c| c.cold_items.share = 0.0).await else {
        return;
    };
    s.retrain().await;
    for user in ["3", "11", "nobody"] {
        let whole = s.ids(&format!("/v1/recommend/{user}?n=30")).await;
        let mut paged = Vec::new();
        for page in 0..6 {
            paged.extend(
                s.ids(&format!("/v1/recommend/{user}?n=5&offset={}", page * 5))
                    .await,
            );
        }
        assert_eq!(paged, whole, "user {user}");
        let distinct: HashSet<&String> = paged.iter().collect();
        assert_eq!(distinct.len(), paged.len());
    }
}

async fn a_retried_batch_counts_once(db: Db) {
    let Some(s) = start(db, None, |_| {}).await else {
        return;
    };
    let batch =
        json!({"events": [{"user": "u", "item": "i", "type": "view"}], "idempotency_key": "k-1"});
    let (st, v) = s.call("POST", "/v1/feedback", Some(batch.clone())).await;
    assert_eq!(
        (st, v["accepted"].as_u64(), v["duplicate"].as_bool()),
        (StatusCode::OK, Some(1), Some(false))
    );
    let (st, v) = s.call("POST", "/v1/feedback", Some(batch)).await;
    assert_eq!(
        (st, v["accepted"].as_u64(), v["duplicate"].as_bool()),
        (StatusCode::OK, Some(0), Some(true))
    );
    // The header does the same.
    let body = json!({"events": [{"user": "u", "item": "j", "type": "view"}]}).to_string();
    for _ in 0..2 {
        s.call_with(
            "POST",
            "/v1/feedback",
            Some(body.clone()),
            &[("idempotency-key", "k-2")],
        )
        .await;
    }
    assert_eq!(s.state.store.count_events().await.ok(), Some(2));
    let (_, v) = s.call("GET", "/v1/users/u", None).await;
    assert_eq!(v["events"], 2);
    let (_, v) = s.call("GET", "/v1/popular", None).await;
    assert_eq!(v["items"][0]["score"], 1.0, "popularity counted once: {v}");
}

async fn forgotten_users_are_gone(db: Db) {
    let Some(s) = start(db, Some(data()), |_| {}).await else {
        return;
    };
    s.retrain().await;
    let (_, v) = s.call("GET", "/v1/users/5", None).await;
    assert_eq!(v["in_model"], true);
    s.send(&[("5", "3", "purchase")]).await;
    let (st, _) = s.call("DELETE", "/v1/users/5", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s.call("GET", "/v1/users/5", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.call("DELETE", "/v1/users/5", None).await.0,
        StatusCode::NOT_FOUND
    );
    // The model still holds a vector for them, but it is never used again: they are a
    // stranger, answered with popular items.
    let (_, v) = s.call("GET", "/v1/recommend/5", None).await;
    assert_eq!(v["cold_start"], "popular", "{v}");
    let row = s.retrain().await;
    let models = s.call("GET", "/v1/models", None).await.1;
    let trained = models.as_array().map(|a| a.len()).unwrap_or(0);
    assert_eq!(trained, 2);
    let path = std::path::PathBuf::from(row["artifact"].as_str().unwrap_or_default());
    let loaded = reco_models::load(&path).expect("artifact");
    assert!(
        loaded.users.get("5").is_none(),
        "the new version never saw them"
    );
    // After a restart the forgetting holds for the old version too.
    s.call("POST", "/v1/models/1/activate", None).await;
    let (_, v) = s.call("GET", "/v1/recommend/5", None).await;
    assert_eq!(v["cold_start"], "popular", "{v}");
}

async fn new_items_are_recommended_by_category_and_deleted_ones_never(db: Db) {
    let Some(s) = start(db, Some(data()), |c| c.cold_items.share = 0.2).await else {
        return;
    };
    s.retrain().await;
    let history = s
        .state
        .store
        .user_events_after("9", 0)
        .await
        .expect("events");
    let first = history.first().expect("user 9 has events").item.clone();
    let (_, item) = s.call("GET", &format!("/v1/items/{first}"), None).await;
    let category = item["categories"][0]
        .as_str()
        .expect("category")
        .to_string();
    let (st, _) = s
        .call(
            "PUT",
            "/v1/items/fresh",
            Some(json!({"title": "Fresh", "categories": [category]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = s.call("GET", "/v1/recommend/9?n=10", None).await;
    let pos = item_ids(&v).iter().position(|i| i == "fresh");
    assert_eq!(
        pos,
        Some(4),
        "a new item takes the fifth slot at share 0.2: {v}"
    );
    assert_eq!(v["items"][4]["new"], true);
    let (_, v) = s.call("GET", "/v1/latest?n=1", None).await;
    assert_eq!(item_ids(&v), vec!["fresh"]);
    let page = s.ids("/v1/latest?n=5&exclude=fresh").await;
    assert_eq!(page.len(), 5, "exclusions do not shorten a page");
    assert!(!page.contains(&"fresh".to_string()));
    let (_, v) = s
        .call(
            "GET",
            &format!("/v1/recommend/9?n=10&category={category}"),
            None,
        )
        .await;
    assert!(item_ids(&v).contains(&"fresh".to_string()));
    // Deleted: gone from every list at once.
    let top = s.ids("/v1/recommend/9?n=3").await;
    for id in ["fresh", top[0].as_str()] {
        assert_eq!(
            s.call("DELETE", &format!("/v1/items/{id}"), None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            s.call("GET", &format!("/v1/items/{id}"), None).await.0,
            StatusCode::NOT_FOUND
        );
    }
    for uri in [
        "/v1/recommend/9?n=80",
        "/v1/popular?n=100",
        "/v1/latest?n=100",
    ] {
        let ids = s.ids(uri).await;
        assert!(
            !ids.contains(&"fresh".to_string()) && !ids.contains(&top[0]),
            "{uri}"
        );
    }
    assert_eq!(
        s.call("DELETE", "/v1/items/fresh", None).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn bad_requests_get_clear_json_errors(db: Db) {
    let Some(s) = start(db, Some(data()), |c| c.limits.max_body_bytes = 4096).await else {
        return;
    };
    s.retrain().await;
    let cases: Vec<(&str, &str, Option<String>, StatusCode, &str)> = vec![
        (
            "POST",
            "/v1/feedback",
            Some(
                json!({"events": [{"user": "u", "item": "i", "type": "view", "value": 0}]})
                    .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/feedback",
            Some(
                json!({"events": [{"user": "u", "item": "i", "type": "view", "value": -2}]})
                    .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/feedback",
            Some(
                json!({"events": [{"user": "u", "item": "i", "type": "view", "value": 1e300}]})
                    .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/feedback",
            Some(json!({"events": [{"user": "u\u{0}", "item": "i", "type": "view"}]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "GET",
            "/v1/users/%00",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "PUT",
            "/v1/items/t",
            Some(json!({"title": "a\u{0}b"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/feedback",
            Some("{not json".into()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/v1/feedback",
            Some(json!({"events": [{"user": "u"}]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/feedback",
            Some(json!({"events": [{"user": "u", "item": "i", "type": "teleport"}]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/feedback",
            Some(json!({"events": [{"user": "", "item": "i", "type": "view"}]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/feedback",
            Some(
                json!({"events": [{"user": "u", "item": "i", "type": "view", "extra": 1}]})
                    .to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/feedback",
            Some(format!(
                "{{\"events\": [], \"pad\": \"{}\"}}",
                "x".repeat(5000)
            )),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "GET",
            "/v1/recommend/7?n=100000",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "GET",
            "/v1/recommend/7?n=10&offset=995",
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "GET",
            "/v1/recommend/7?n=-1",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/v1/recommend/7?match=most",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/v1/recommend/7?colour=red",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/v1/items/nothing/similar",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "GET",
            "/v1/users/nobody",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "GET",
            "/v1/items/nothing",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "POST",
            "/v1/models/99/activate",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "POST",
            "/v1/models/x/activate",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/v1/models/rollback",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "PUT",
            "/v1/items/a",
            Some(json!({"categories": [""]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "POST",
            "/v1/recommend/session",
            Some(json!({"items": "a"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let (st, v) = s.call_with(method, uri, body, &[]).await;
        assert_eq!(st, status, "{method} {uri}: {v}");
        assert_eq!(v["error"]["code"], code, "{method} {uri}: {v}");
        assert_eq!(v["error"]["status"], status.as_u16());
        assert!(!v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
    }
    let long = "u".repeat(300);
    let (st, _) = s.call("GET", &format!("/v1/recommend/{long}"), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Two trainings at once: the second is refused, not queued.
    let (a, b) = tokio::join!(
        s.call("POST", "/v1/models/retrain", None),
        s.call("POST", "/v1/models/retrain", None)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
}

async fn keys_guard_reads_and_writes(db: Db) {
    let write = "write-key-0123456789";
    let read = "read-key-0123456789";
    let Some(s) = start(db, None, |c| {
        c.keys.write = Some(write.into());
        c.keys.read = Some(read.into());
    })
    .await
    else {
        return;
    };
    let body = Some(json!({"events": [{"user": "u", "item": "i", "type": "view"}]}).to_string());
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, StatusCode);
    let cases: Vec<Case> = vec![
        ("POST", "/v1/feedback", vec![], StatusCode::UNAUTHORIZED),
        (
            "POST",
            "/v1/feedback",
            vec![("x-api-key", read.into())],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "POST",
            "/v1/feedback",
            vec![("x-api-key", write.into())],
            StatusCode::OK,
        ),
        (
            "POST",
            "/v1/feedback",
            vec![("authorization", format!("Bearer {write}"))],
            StatusCode::OK,
        ),
        ("GET", "/v1/popular", vec![], StatusCode::UNAUTHORIZED),
        (
            "GET",
            "/v1/popular",
            vec![("x-api-key", "wrong-key-0123456789".into())],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "GET",
            "/v1/popular",
            vec![("x-api-key", read.into())],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/popular",
            vec![("x-api-key", write.into())],
            StatusCode::OK,
        ),
        (
            "GET",
            "/v1/models",
            vec![("x-api-key", read.into())],
            StatusCode::UNAUTHORIZED,
        ),
        ("GET", "/health/live", vec![], StatusCode::OK),
    ];
    for (method, uri, headers, status) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let b = (method == "POST").then(|| body.clone()).flatten();
        let (st, v) = s.call_with(method, uri, b, &h).await;
        assert_eq!(st, status, "{method} {uri} {headers:?}: {v}");
        if st == StatusCode::UNAUTHORIZED {
            assert_eq!(v["error"]["code"], "unauthorized");
            assert!(!v.to_string().contains(write) && !v.to_string().contains(read));
        }
    }
}

async fn versions_activate_roll_back_and_gate(db: Db) {
    let Some(s) = start(db, Some(data()), |_| {}).await else {
        return;
    };
    let v1 = s.retrain().await;
    assert_eq!(
        (v1["version"].as_i64(), v1["status"].as_str()),
        (Some(1), Some("active"))
    );
    assert!(
        v1["metrics"]["candidate"]["ndcg@10"]["mean"]
            .as_f64()
            .is_some(),
        "{v1}"
    );
    s.send(&[("1", "2", "purchase"), ("1", "4", "purchase")])
        .await;
    let v2 = s.retrain().await;
    assert_eq!(v2["version"], 2);
    assert!(
        v2["metrics"]["active"]["ndcg@10"]["mean"]
            .as_f64()
            .is_some(),
        "compared with v1"
    );
    let (st, v) = s.call("POST", "/v1/models/rollback", None).await;
    assert_eq!((st, v["version"].as_i64()), (StatusCode::OK, Some(1)));
    assert_eq!(
        s.call("GET", "/health/ready", None).await.1["model_version"],
        1
    );
    // Rolled back below the new events: they are live again, the purchases stay out.
    let ids = s.ids("/v1/recommend/1?n=80").await;
    assert!(!ids.contains(&"2".to_string()) && !ids.contains(&"4".to_string()));
    let (_, v) = s.call("POST", "/v1/models/rollback", None).await;
    assert_eq!(v["version"], 2, "rolling back twice returns");
    let (st, v) = s.call("POST", "/v1/models/1/activate", None).await;
    assert_eq!((st, v["version"].as_i64()), (StatusCode::OK, Some(1)));
    let models = s.call("GET", "/v1/models", None).await.1;
    let statuses: Vec<&str> = models
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, vec!["ready", "active"]);
}

async fn everything_acknowledged_survives_a_restart(db: Db) {
    let Some(s) = start(db, Some(data()), |_| {}).await else {
        return;
    };
    // A rejection older than the model: no version holds it, the live state must.
    s.send(&[("8", "9", "hide")]).await;
    s.retrain().await;
    s.send(&[
        ("8", "1", "purchase"),
        ("8", "6", "dislike"),
        ("newcomer", "1", "view"),
    ])
    .await;
    let before = s.ids("/v1/recommend/8?n=10").await;
    let count = s.state.store.count_events().await.expect("count");
    let (cfg, dir) = (s.cfg.clone(), s.dir);
    s.state.store.close().await;
    drop(s.state);
    let s = common::restart(cfg, dir, None).await;
    assert_eq!(s.state.store.count_events().await.ok(), Some(count));
    assert_eq!(
        s.call("GET", "/health/ready", None).await.1["model_version"],
        1
    );
    assert_eq!(
        s.ids("/v1/recommend/8?n=10").await,
        before,
        "the same answer after a restart"
    );
    let all = s.ids("/v1/recommend/8?n=80&include_seen=true").await;
    assert!(!all.contains(&"6".to_string()), "the dislike is remembered");
    assert!(
        !all.contains(&"9".to_string()),
        "a rejection older than the model too"
    );
    let (_, v) = s.call("GET", "/v1/recommend/newcomer", None).await;
    assert_eq!(v["cold_start"], "history");
}

async fn lists_sessions_and_similar_items(db: Db) {
    let Some(s) = start(db, Some(data()), |c| {
        c.model = reco_serve::config::ModelSource::Inline(
            json!({"model": "item-knn", "similarity": "vector-cosine", "k": 20}),
        );
    })
    .await
    else {
        return;
    };
    s.retrain().await;
    let (st, v) = s.call("GET", "/v1/items/3/similar?n=5", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let sim = item_ids(&v);
    assert_eq!(sim.len(), 5);
    assert!(!sim.contains(&"3".to_string()));
    let (st, v) = s
        .call(
            "POST",
            "/v1/recommend/session",
            Some(json!({"items": ["3", "5"], "n": 4})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let got = item_ids(&v);
    assert_eq!(got.len(), 4);
    assert!(!got.contains(&"3".to_string()) && !got.contains(&"5".to_string()));
    assert!(v.get("cold_start").is_none());
    let (_, v) = s
        .call(
            "POST",
            "/v1/recommend/session",
            Some(json!({"items": ["unheard-of"]})),
        )
        .await;
    assert_eq!(v["cold_start"], "popular");
    // Popular counts positive events; filters by category; all vs any.
    let pop = s.ids("/v1/popular?n=80").await;
    let counts = |id: &str| {
        let ds = data();
        let i = ds.items.get(id).expect("item");
        ds.interactions.item_len(i)
    };
    assert!(
        pop.windows(2).all(|w| counts(&w[0]) >= counts(&w[1])),
        "popular is by count"
    );
    let (_, it) = s.call("GET", &format!("/v1/items/{}", pop[0]), None).await;
    let cat = it["categories"][0].as_str().expect("category").to_string();
    let filtered = s.ids(&format!("/v1/popular?n=80&category={cat}")).await;
    assert!(!filtered.is_empty() && filtered.len() < pop.len());
    let none = s
        .ids(&format!(
            "/v1/popular?n=80&category={cat},nonexistent&match=all"
        ))
        .await;
    assert!(none.is_empty());
    let any = s
        .ids(&format!("/v1/popular?n=80&category={cat},nonexistent"))
        .await;
    assert_eq!(any, filtered);
}

async fn a_retrain_swaps_atomically_under_concurrent_requests(db: Db) {
    let Some(s) = start(db, Some(data()), |_| {}).await else {
        return;
    };
    s.retrain().await;
    let s = std::sync::Arc::new(s);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (s, stop) = (s.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut versions) = (0, Vec::new(), HashSet::new());
            let mut k = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                k += 1;
                let user = (c * 31 + k) % 120;
                let (st, v) = s
                    .call("GET", &format!("/v1/recommend/{user}?n=10"), None)
                    .await;
                if st == StatusCode::OK && item_ids(&v).len() == 10 {
                    ok += 1;
                    versions.insert(v["model_version"].as_i64().unwrap_or(-1));
                } else {
                    failed.push(format!("{st}: {v}"));
                }
                tokio::task::yield_now().await;
            }
            (ok, failed, versions)
        }));
    }
    for _ in 0..3 {
        s.send(&[("1", "9", "view")]).await;
        s.retrain().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = HashSet::new();
    let mut total = 0;
    for c in clients {
        let (ok, failed, versions) = c.await.expect("client");
        assert!(
            failed.is_empty(),
            "failed requests during swaps: {failed:?}"
        );
        total += ok;
        seen.extend(versions);
    }
    assert!(total > 0);
    assert!(seen.iter().all(|v| (1..=4).contains(v)), "{seen:?}");
    assert!(seen.len() >= 2, "requests spanned the swaps: {seen:?}");
}

async fn replicas_on_one_database_follow_each_other(db: Db) {
    let Some(a) = start(db, Some(data()), |c| c.replicas.poll_ms = Some(50)).await else {
        return;
    };
    a.retrain().await;
    let b = common::restart(a.cfg.clone(), tempfile::tempdir().expect("tempdir"), None).await;
    assert_eq!(
        b.call("GET", "/health/ready", None).await.1["model_version"],
        1
    );
    let top = b.ids("/v1/recommend/4?n=3").await;
    // An event sent to one replica reaches the other's next answers within a few polls.
    a.send(&[("4", &top[0], "purchase")]).await;
    let mut waited = 0;
    while b.ids("/v1/recommend/4?n=3").await.contains(&top[0]) {
        waited += 1;
        assert!(waited < 100, "replica b never saw the event");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A version trained and activated on one replica becomes the other's.
    a.retrain().await;
    let mut waited = 0;
    while b.call("GET", "/health/ready", None).await.1["model_version"] != 2 {
        waited += 1;
        assert!(waited < 100, "replica b never followed version 2");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Forgetting on one forgets on both; new items show on both.
    assert_eq!(
        a.call("DELETE", "/v1/users/4", None).await.0,
        StatusCode::OK
    );
    a.call("PUT", "/v1/items/late", Some(json!({"categories": ["z"]})))
        .await;
    let mut waited = 0;
    loop {
        let (_, v) = b.call("GET", "/v1/recommend/4", None).await;
        let latest = b.ids("/v1/latest?n=1").await;
        if v["cold_start"] == "popular" && latest == vec!["late".to_string()] {
            break;
        }
        waited += 1;
        assert!(
            waited < 100,
            "replica b still serves user 4 or lacks the item: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // An opt-out, and then an opt-in, on one replica hold on the other.
    let cold = |v: &Value| v["cold_start"].as_str().unwrap_or_default().to_string();
    for (out, want) in [(true, "opted_out"), (false, "")] {
        let (st, v) = a
            .call(
                "PUT",
                "/v1/users/5/opt-out",
                Some(json!({ "opt_out": out })),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let mut waited = 0;
        loop {
            let (_, v) = b.call("GET", "/v1/recommend/5", None).await;
            if cold(&v) == want {
                break;
            }
            waited += 1;
            assert!(
                waited < 100,
                "replica b never followed opt_out = {out}: {v}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // An experiment started on one replica assigns users on the other; stopped, it stops there.
    let spec = json!({"name": "across", "arms": [
        {"name": "one", "version": 1}, {"name": "two", "version": 2}]});
    let (st, v) = a.call("POST", "/v1/experiments", Some(spec)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for running in [true, false] {
        let mut waited = 0;
        loop {
            let (_, v) = b.call("GET", "/v1/recommend/6", None).await;
            if (v["experiment"] == "across") == running {
                break;
            }
            waited += 1;
            assert!(waited < 100, "replica b never followed the experiment: {v}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if running {
            let (st, v) = a.call("POST", "/v1/experiments/across/stop", None).await;
            assert_eq!(st, StatusCode::OK, "{v}");
        }
    }
}

async fn the_gate_compares_on_events_the_active_version_has_not_seen(db: Db) {
    let Some(s) = start(db, Some(data()), |c| c.retrain.tolerance = 0.0).await else {
        return;
    };
    let v1 = s.retrain().await;
    assert_eq!(v1["status"], "active", "nothing to compare with: {v1}");
    // Nothing new: promoted without a comparison (a retrain after forgetting must promote).
    let v2 = s.retrain().await;
    assert_eq!(v2["status"], "active", "{v2}");
    assert!(v2["message"]
        .as_str()
        .unwrap_or_default()
        .contains("without a comparison"));
    // Three users with new events: only they are held out, for both models.
    s.send(&[
        ("1", "70", "view"),
        ("2", "71", "view"),
        ("3", "72", "view"),
    ])
    .await;
    let v3 = s.retrain().await;
    assert_eq!(v3["metrics"]["holdout_users"], 3, "{v3}");
    let cand = v3["metrics"]["candidate"]["ndcg@10"]["mean"].as_f64();
    let act = v3["metrics"]["active"]["ndcg@10"]["mean"].as_f64();
    let (Some(c), Some(a)) = (cand, act) else {
        panic!("both scored: {v3}")
    };
    let expected = if c >= a { "active" } else { "rejected" };
    assert_eq!(v3["status"], expected, "{v3}");
}

async fn a_pipeline_file_is_served_like_a_model(db: Db) {
    reco_pipeline::register().expect("register");
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pipeline.toml");
    let Some(s) = start(db, Some(data()), |c| {
        c.model = reco_serve::config::ModelSource::File(file);
    })
    .await
    else {
        return;
    };
    let row = s.retrain().await;
    assert_eq!(row["status"], "active", "{row}");
    let ids = s.ids("/v1/recommend/4?n=10").await;
    assert_eq!(ids.len(), 10);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 10, "{ids:?}");
    // The pipeline answers from the user's history too: a purchase leaves the list.
    s.send(&[("4", &ids[0], "purchase")]).await;
    let after = s.ids("/v1/recommend/4?n=10").await;
    assert!(!after.contains(&ids[0]), "{after:?}");
    // Its artifact is read back at a restart and gives the same answer.
    let (cfg, dir) = (s.cfg.clone(), s.dir);
    s.state.store.close().await;
    drop(s.state);
    let s = common::restart(cfg, dir, None).await;
    assert_eq!(s.ids("/v1/recommend/4?n=10").await, after);
}
