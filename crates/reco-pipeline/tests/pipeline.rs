//! The properties each stage of the pipeline, blend and switch promises (the shared behaviour
//! suite runs their examples in `behaviour.rs`).

use reco_core::explain::Reason;
use reco_core::model::{Filter, FitOptions, Query};
use reco_core::split::{split, Protocol};
use reco_models::ModelSpec;
use serde_json::json;

fn spec(value: serde_json::Value) -> ModelSpec {
    reco_pipeline::register().expect("register");
    ModelSpec::from_value(value).expect("valid spec")
}

/// The model's `k` best items for user `u`, `seen` excluded.
fn top(m: &dyn reco_models::Model, u: u32, k: usize, seen: &[u32]) -> Vec<reco_core::topk::Scored> {
    m.recommend(
        &Query::user(u),
        k,
        &Filter {
            exclude: seen,
            allow: None,
        },
    )
    .unwrap()
}

fn opts() -> FitOptions<'static> {
    FitOptions {
        seed: 5,
        progress: None,
        validation: None,
        checkpoint: None,
    }
}

fn pipeline(rerank: serde_json::Value, ranker: &str) -> serde_json::Value {
    json!({
        "model": "pipeline",
        "models": [
            {"name": "mf", "model": "ials", "factors": 16, "epochs": 6},
            {"name": "knn", "model": "item-knn", "similarity": "vector-cosine", "max_neighbours": 30}
        ],
        "sources": [
            {"kind": "ann", "model": "mf", "budget": 60, "index": "exact"},
            {"kind": "related", "model": "knn", "recent_items": 5, "per_item": 10, "budget": 40},
            {"kind": "top-categories", "categories": 2, "budget": 30},
            {"kind": "popular", "budget": 20},
            {"kind": "popular-in-segment", "field": "country", "budget": 20}
        ],
        "ranker": {"kind": ranker, "models": ["mf"]},
        "rerank": rerank,
        "depth": 50
    })
}

#[test]
fn candidates_respect_budgets_and_never_include_seen_items() {
    let data = reco_core::synth::structured().unwrap();
    let value = pipeline(json!([]), "logistic");
    let typed = spec(value.clone())
        .params::<reco_pipeline::Pipeline>()
        .unwrap()
        .clone();
    let p = reco_pipeline::Pipeline::fit(typed, &data, &opts()).unwrap();
    let m: &dyn reco_models::Model = &p;
    let budgets: Vec<(String, usize)> = value["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let kind = s["kind"].as_str().unwrap();
            let label = match (kind, s.get("model"), s.get("field")) {
                (_, Some(m), _) => format!("{kind}:{}", m.as_str().unwrap()),
                ("popular-in-segment", _, Some(f)) => format!("popular-in:{}", f.as_str().unwrap()),
                _ => kind.to_string(),
            };
            (label, s["budget"].as_u64().unwrap() as usize)
        })
        .collect();
    for u in [0u32, 3, 77] {
        // Per source: how many candidates it proposed, and the deepest rank it reached.
        let mut count = vec![0usize; budgets.len()];
        let mut deepest = vec![0u32; budgets.len()];
        for i in 0..data.n_items() as u32 {
            let Some(t) = p.trace(&Query::user(u), i).unwrap() else {
                continue;
            };
            for (label, rank, _) in &t.sources {
                let k = budgets.iter().position(|(l, _)| l == label).unwrap();
                count[k] += 1;
                deepest[k] = deepest[k].max(*rank);
            }
        }
        for (k, (label, budget)) in budgets.iter().enumerate() {
            assert!(
                count[k] <= *budget,
                "{label}: {} > budget {budget}",
                count[k]
            );
            assert!(
                (deepest[k] as usize) < *budget,
                "{label}: rank {}",
                deepest[k]
            );
        }
        // Sources with more than enough items fill their budget exactly.
        let popular = budgets.iter().position(|(l, _)| l == "popular").unwrap();
        assert_eq!(count[popular], budgets[popular].1);
        let ann = budgets.iter().position(|(l, _)| l == "ann:mf").unwrap();
        assert_eq!(count[ann], budgets[ann].1);

        let seen = data.interactions.user_items(u);
        let recs = top(m, u, 100, seen);
        assert!(recs.iter().all(|s| seen.binary_search(&s.item).is_err()));
        // An allow-list is honoured by every source and by the backfill.
        let allow: Vec<u32> = (0..600).filter(|i| i % 3 == 0).collect();
        let recs = m
            .recommend(
                &Query::user(u),
                30,
                &Filter {
                    exclude: seen,
                    allow: Some(&allow),
                },
            )
            .unwrap();
        assert_eq!(recs.len(), 30);
        assert!(recs.iter().all(|s| s.item % 3 == 0));
    }
}

fn intra_list_similarity(data: &reco_core::Dataset, items: &[u32]) -> f64 {
    let f = data
        .item_features
        .as_deref()
        .unwrap()
        .primary_category()
        .unwrap();
    let mut same = 0;
    let mut pairs = 0;
    for a in 0..items.len() {
        for b in a + 1..items.len() {
            pairs += 1;
            if f.of(items[a]) == f.of(items[b]) {
                same += 1;
            }
        }
    }
    same as f64 / pairs.max(1) as f64
}

#[test]
fn mmr_diversifies_caps_bound_categories_and_exploration_takes_tail_slots() {
    let data = reco_core::synth::structured().unwrap();
    let fit = |rerank| {
        spec(pipeline(rerank, "logistic"))
            .fit(&data, &opts())
            .unwrap()
    };
    let plain = fit(json!([]));
    let diverse = fit(json!([{"kind": "mmr", "lambda": 0.3}]));
    let capped = fit(json!([{"kind": "category-cap", "max": 2}]));
    let explore = fit(json!([{"kind": "explore", "slots": 2, "of": 10, "head": 0.2}]));
    let cats = data
        .item_features
        .as_deref()
        .unwrap()
        .primary_category()
        .unwrap();
    let counts = data.interactions.item_counts();
    let mut order: Vec<u32> = (0..counts.len() as u32).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
    let head: Vec<u32> = order[..120].to_vec();
    let (mut sim_plain, mut sim_mmr) = (0.0, 0.0);
    for u in 0..40u32 {
        let seen = data.interactions.user_items(u);
        let f = Filter {
            exclude: seen,
            allow: None,
        };
        let top = |m: &dyn reco_models::Model| -> Vec<u32> {
            m.recommend(&Query::user(u), 10, &f)
                .unwrap()
                .iter()
                .map(|s| s.item)
                .collect()
        };
        sim_plain += intra_list_similarity(&data, &top(plain.as_ref()));
        sim_mmr += intra_list_similarity(&data, &top(diverse.as_ref()));
        let c = top(capped.as_ref());
        for v in 0..6u32 {
            assert!(
                c.iter()
                    .filter(|&&i| cats.of(i).first() == Some(&v))
                    .count()
                    <= 2,
                "cap broken for user {u}"
            );
        }
        let e = top(explore.as_ref());
        // The last two slots hold tail items whenever the candidates have any.
        for &i in &e[8..] {
            assert!(
                !head.contains(&i),
                "user {u}: exploration slot holds head item {i}"
            );
        }
        assert_eq!(
            &e[..8],
            &top(plain.as_ref())[..8],
            "exploration leaves the first slots alone"
        );
    }
    assert!(
        sim_mmr < 0.7 * sim_plain,
        "MMR λ = 0.3 should diversify: {sim_mmr} vs {sim_plain}"
    );
}

#[test]
fn explanations_name_sources_and_decompose_ials_exactly() {
    let data = reco_core::synth::structured().unwrap();
    let p = spec(pipeline(json!([]), "logistic"))
        .fit(&data, &opts())
        .unwrap();
    let seen = data.interactions.user_items(4);
    let recs = top(p.as_ref(), 4, 5, seen);
    let e = reco_pipeline::explain(p.as_ref(), &data, &Query::user(4), recs[0].item, 3).unwrap();
    assert!(
        e.reasons.iter().any(|r| matches!(r, Reason::Source { .. })),
        "{e:?}"
    );
    assert!(
        e.reasons
            .iter()
            .any(|r| matches!(r, Reason::Feature { .. })),
        "{e:?}"
    );

    // implicit ALS: the history items' contributions add up to the folded-in score.
    let ials = spec(json!({"model": "ials", "factors": 8, "epochs": 5}))
        .fit(&data, &opts())
        .unwrap();
    let m = &data.interactions;
    let history: Vec<(u32, f32)> = m
        .user_items(4)
        .iter()
        .copied()
        .zip(m.user_values(4).iter().copied())
        .collect();
    let mut scores = vec![0f32; data.n_items()];
    ials.score(&Query::history(&history), &mut scores).unwrap();
    let item = 599 - 10;
    let e = reco_pipeline::explain(
        ials.as_ref(),
        &data,
        &Query::history(&history),
        item,
        history.len(),
    )
    .unwrap();
    let total: f32 = e
        .reasons
        .iter()
        .filter_map(|r| match r {
            Reason::Item { weight, .. } => Some(*weight),
            _ => None,
        })
        .sum();
    assert!(
        (total - scores[item as usize]).abs() < 1e-3 * (1.0 + scores[item as usize].abs()),
        "{total} vs {}",
        scores[item as usize]
    );

    // An embedding model without its own decomposition is explained by vector similarity.
    let bpr = spec(json!({"model": "bpr", "factors": 8, "epochs": 5}))
        .fit(&data, &opts())
        .unwrap();
    let e = reco_pipeline::explain(bpr.as_ref(), &data, &Query::user(4), recs[0].item, 3).unwrap();
    assert!(
        matches!(e.reasons.first(), Some(Reason::Item { .. })),
        "{e:?}"
    );
    // User-kNN names neighbours.
    let knn = spec(json!({"model": "user-knn", "similarity": "cosine", "k": 20}))
        .fit(&data, &opts())
        .unwrap();
    let r = top(knn.as_ref(), 4, 1, seen);
    let e = reco_pipeline::explain(knn.as_ref(), &data, &Query::user(4), r[0].item, 3).unwrap();
    assert!(
        matches!(e.reasons.first(), Some(Reason::Users { users, .. }) if !users.is_empty()),
        "{e:?}"
    );
}

#[test]
fn blend_tuning_gives_a_random_model_no_weight_whatever_its_position() {
    let data = reco_core::synth::structured().unwrap();
    let models = [
        json!({"name": "mf", "model": "ials", "factors": 16, "epochs": 6}),
        json!({"name": "noise", "model": "random"}),
    ];
    let weights = |order: [usize; 2]| {
        let s: reco_pipeline::BlendSpec = serde_json::from_value(json!({
            "models": [models[order[0]].clone(), models[order[1]].clone()]
        }))
        .unwrap();
        reco_pipeline::Blend::fit(s, &data, &opts())
            .unwrap()
            .weights
    };
    let (a, b) = (weights([0, 1]), weights([1, 0]));
    // A random ranking only adds noise to a learned one: tuning must all but silence it, and
    // must find the same weights whichever position the models are listed in.
    assert!(a[0] > 0.0 && a[1] <= 0.1 * a[0], "{a:?}");
    assert_eq!((a[0], a[1]), (b[1], b[0]), "{a:?} vs {b:?}");
}

#[test]
fn switch_answers_cold_users_with_the_cold_model() {
    let data = reco_core::synth::structured().unwrap();
    let sw = spec(json!({
        "model": "switch",
        "warm": {"model": "ials", "factors": 8, "epochs": 4},
        "cold": {"model": "popularity"},
        "min_user": 3
    }))
    .fit(&data, &opts())
    .unwrap();
    let pop = spec(json!({"model": "popularity"}))
        .fit(&data, &opts())
        .unwrap();
    let (mut a, mut b) = (vec![0f32; data.n_items()], vec![0f32; data.n_items()]);
    let short = [(1u32, 1.0f32), (2, 1.0)];
    sw.score(&Query::history(&short), &mut a).unwrap();
    pop.score(&Query::history(&short), &mut b).unwrap();
    assert_eq!(a, b);
    // The last five items have no interactions: for a warm user they are scored by popularity
    // (standardised), not by their untrained factors.
    sw.score(&Query::user(0), &mut a).unwrap();
    assert!(a[595..].iter().all(|x| x.is_finite()));
}

#[test]
fn bad_specifications_are_clear_errors() {
    reco_pipeline::register().unwrap();
    let err = |v: serde_json::Value| {
        ModelSpec::from_value(v)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let mut v = pipeline(json!([]), "logistic");
    v["sources"][0]["model"] = json!("nope");
    assert!(err(v).contains("\"nope\""));
    let mut v = pipeline(json!([]), "logistic");
    v["sources"][1]["budget"] = json!(0);
    assert!(err(v).contains("budget 0"));
    assert!(err(pipeline(
        json!([{"kind": "mmr", "lambda": 1.5}]),
        "logistic"
    ))
    .contains("lambda"));
    let mut v = pipeline(json!([]), "logistic");
    v["models"][0]["colour"] = json!(3);
    let e = err(v);
    assert!(e.contains("model \"mf\"") && e.contains("colour"), "{e}");
    let mut v = pipeline(json!([]), "logistic");
    v["models"][0]["factors"] = json!(0);
    let e = err(v);
    assert!(e.contains("model \"mf\"") && e.contains("factors"), "{e}");
    // Capabilities are checked before anything trains: popularity has no item vectors.
    let mut v = pipeline(json!([]), "logistic");
    v["models"][0] = json!({"name": "mf", "model": "popularity"});
    let e = err(v);
    assert!(
        e.contains("item vectors") && e.contains("popularity"),
        "{e}"
    );
    assert!(
        err(json!({"model": "blend", "models": [{"name": "a", "model": "popularity"}]}))
            .contains("two models")
    );
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/pipeline.toml"
    ))
    .unwrap();
    let value = reco_pipeline::spec_from_toml(&text)
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(value["sources"].as_array().unwrap().len(), 4);
    assert!(reco_pipeline::spec_from_toml("sources = []").is_err());
}

#[test]
fn hnsw_source_finds_what_exact_search_finds() {
    let data = reco_core::synth::structured().unwrap();
    let fold = &split(&data, &Protocol::Temporal { fraction: 0.2 }, 1).unwrap()[0];
    let with = |index: &str| {
        spec(json!({
            "model": "pipeline",
            "models": [{"name": "mf", "model": "ials", "factors": 16, "epochs": 6}],
            "sources": [{"kind": "ann", "model": "mf", "budget": 50, "index": index}],
            "ranker": {"kind": "sources"}
        }))
        .fit(&fold.train, &opts())
        .unwrap()
    };
    let (h, e) = (with("hnsw"), with("exact"));
    let (mut found, mut total) = (0, 0);
    for u in 0..100u32 {
        let seen = fold.train.interactions.user_items(u);
        let f = Filter {
            exclude: seen,
            allow: None,
        };
        let a = h.recommend(&Query::user(u), 50, &f).unwrap();
        let b = e.recommend(&Query::user(u), 50, &f).unwrap();
        found += a
            .iter()
            .filter(|x| b.iter().any(|y| y.item == x.item))
            .count();
        total += b.len();
    }
    assert!(found as f64 / total as f64 > 0.95, "{found}/{total}");
}

#[test]
fn a_pipeline_inside_a_blend_keeps_its_name_through_a_round_trip() {
    let inner = pipeline(json!([]), "sources");
    let mut named = inner.clone();
    named["name"] = json!("p");
    let blend = spec(json!({
        "model": "blend",
        "models": [named, {"name": "pop", "model": "popularity"}]
    }));
    let value = blend.to_value().unwrap();
    assert_eq!(value["models"][0]["name"], "p");
    assert_eq!(spec(value), blend);
    // A named sub-model cannot carry a report name of its own: it would be lost on reading.
    let mut own = reco_pipeline::PipelineSpec::clone(
        spec(inner).params::<reco_pipeline::Pipeline>().unwrap(),
    );
    own.name = Some("report".into());
    let clash = reco_pipeline::spec::NamedModel {
        name: "p".into(),
        spec: ModelSpec::new::<reco_pipeline::Pipeline>(own),
    };
    assert!(serde_json::to_value(&clash).is_err());
}
