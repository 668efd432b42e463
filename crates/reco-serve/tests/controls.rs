//! User controls: opting out of personalisation, retention of old data, and the export of
//! everything stored about a user.

mod common;

use axum::http::StatusCode;
use common::{data, item_ids, start, Db};
use serde_json::json;

on_both!(
    opting_out_gives_popular_items_and_leaves_training,
    retention_deletes_old_events_and_impressions,
    the_export_holds_everything_stored_about_a_user,
);

async fn opting_out_gives_popular_items_and_leaves_training(db: Db) {
    let Some(s) = start(db, Some(data()), |_| {}).await else {
        return;
    };
    s.retrain().await;
    let (_, v) = s.call("GET", "/v1/recommend/3?n=5", None).await;
    assert!(v["cold_start"].is_null(), "{v}");
    let (st, v) = s
        .call("PUT", "/v1/users/3/opt-out", Some(json!({"opt_out": true})))
        .await;
    assert_eq!((st, v["opt_out"].as_bool()), (StatusCode::OK, Some(true)));
    // The list anyone unknown gets: popular items, whatever the model thinks of the user.
    let (_, v) = s.call("GET", "/v1/recommend/3?n=5", None).await;
    assert_eq!(v["cold_start"], "opted_out", "{v}");
    assert!(v["experiment"].is_null());
    let (_, export) = s.call("GET", "/v1/users/3/export", None).await;
    assert_eq!(export["opt_out"], true);
    assert_eq!(item_ids(&v), s.ids("/v1/popular?n=5").await);
    // Their events are not trained on.
    s.retrain().await;
    let (_, u) = s.call("GET", "/v1/users/3", None).await;
    assert_eq!(u["in_model"], false, "{u}");
    let (_, u) = s.call("GET", "/v1/users/4", None).await;
    assert_eq!(u["in_model"], true, "{u}");
    // And back in: the version trained without them knows them as nobody (popular items) until
    // the next training puts them back.
    s.call(
        "PUT",
        "/v1/users/3/opt-out",
        Some(json!({"opt_out": false})),
    )
    .await;
    let (_, v) = s.call("GET", "/v1/recommend/3?n=5", None).await;
    assert_eq!(v["cold_start"], "popular", "{v}");
    s.retrain().await;
    let (_, u) = s.call("GET", "/v1/users/3", None).await;
    assert_eq!(u["in_model"], true, "{u}");
    let (st, _) = s
        .call(
            "PUT",
            "/v1/users/3/opt-out",
            Some(json!({"opt_out": "yes"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn retention_deletes_old_events_and_impressions(db: Db) {
    let Some(s) = start(db, None, |c| {
        c.retention.days = 30;
    })
    .await
    else {
        return;
    };
    let now = reco_serve::store::now();
    let day = 86_400;
    let events = json!({"events": [
        {"user": "a", "item": "x", "type": "view", "timestamp": now - 40 * day},
        {"user": "a", "item": "y", "type": "view", "timestamp": now - 31 * day},
        {"user": "a", "item": "z", "type": "view", "timestamp": now - 29 * day},
        {"user": "b", "item": "x", "type": "view", "timestamp": now}]});
    let (st, v) = s.call("POST", "/v1/feedback", Some(events)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // An old batch of impressions, and a list served now.
    let old = reco_serve::store::ImpressionRef {
        id: "r-old",
        user: Some("a"),
        ts: now - 45 * day,
        version: None,
        experiment: None,
        arm: None,
        route: "recommend",
        items: vec!["x"],
        teams: None,
        event_seq: 0,
    };
    let batch = reco_serve::store::ImpressionBatch::from_encoded(&[(
        old.ts,
        old.encode().expect("encode"),
    )])
    .expect("batch");
    s.state
        .store
        .insert_impression_batch(&batch)
        .await
        .expect("insert");
    s.call("GET", "/v1/recommend/a", None).await;
    s.state.impressions.flush().await;
    let (events, impressions) = s.state.apply_retention().await.expect("retention");
    assert_eq!((events, impressions), (2, 1));
    let (_, export) = s.call("GET", "/v1/users/a/export", None).await;
    let items: Vec<&str> = export["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["item"].as_str())
        .collect();
    assert_eq!(items, ["z"]);
    let shown = export["impressions"].as_array().expect("impressions");
    assert_eq!(shown.len(), 1);
    assert_ne!(shown[0]["id"], "r-old");
    // Nothing left to delete.
    assert_eq!(s.state.apply_retention().await.expect("again"), (0, 0));
}

async fn the_export_holds_everything_stored_about_a_user(db: Db) {
    let Some(s) = start(db, Some(data()), |_| {}).await else {
        return;
    };
    s.retrain().await;
    let (st, _) = s
        .call("PUT", "/v1/users/7", Some(json!({"fields": {"age": 31}})))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, list) = s.call("GET", "/v1/recommend/7?n=3", None).await;
    let first = item_ids(&list)[0].clone();
    let events = json!({"events": [{"user": "7", "item": first, "type": "click",
                                    "recommendation": list["id"]}]});
    assert_eq!(
        s.call("POST", "/v1/feedback", Some(events)).await.0,
        StatusCode::OK
    );
    let (st, e) = s.call("GET", "/v1/users/7/export", None).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["fields"]["age"], 31);
    assert_eq!(e["opt_out"], false);
    assert_eq!(e["in_model"], true);
    let events = e["events"].as_array().expect("events");
    let (_, u) = s.call("GET", "/v1/users/7", None).await;
    assert_eq!(events.len() as u64, u["events"].as_u64().expect("count"));
    let last = events.last().expect("an event");
    assert_eq!(
        (&last["item"], &last["recommendation"]),
        (&json!(first), &list["id"])
    );
    let shown = e["impressions"].as_array().expect("impressions");
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["id"], list["id"]);
    assert_eq!(shown[0]["items"], json!(item_ids(&list)));
    assert_eq!(
        s.call("GET", "/v1/users/nobody/export", None).await.0,
        StatusCode::NOT_FOUND
    );
    // Forgetting deletes it all, the lists shown to them included (other users' stay).
    s.call("GET", "/v1/recommend/8?n=3", None).await;
    assert_eq!(
        s.call("DELETE", "/v1/users/7", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.call("GET", "/v1/users/7/export", None).await.0,
        StatusCode::NOT_FOUND
    );
    let left = s
        .state
        .store
        .impressions(None, 0, 1000)
        .await
        .expect("read");
    assert!(left.iter().all(|r| r.user.as_deref() != Some("7")));
    assert!(left.iter().any(|r| r.user.as_deref() == Some("8")));
}
