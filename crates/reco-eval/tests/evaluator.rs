//! The evaluator on a case computed by hand.

use std::sync::Arc;

/// A metric by its written name.
fn metric(name: &str) -> reco_eval::Metric {
    name.parse().expect("metric name")
}

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::split::Fold;
use reco_core::{Dataset, DuplicatePolicy, Feedback, Interactions, Result, Triplets};
use reco_eval::{evaluate, Candidate, EvalConfig, RunFiles};

/// Scores items by a fixed vector, whoever asks, and predicts every rating as 3.
struct Fixed(Vec<f32>);
impl reco_core::model::RatingPredictor for Fixed {
    fn predict(&self, _u: u32, _i: u32) -> f32 {
        3.0
    }
}
impl Recommender for Fixed {
    fn n_items(&self) -> usize {
        self.0.len()
    }
    fn score(&self, _q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(&self.0);
        Ok(())
    }
    fn as_rating_predictor(&self) -> Option<&dyn reco_core::model::RatingPredictor> {
        Some(self)
    }
}

fn matrix(rows: &[(u32, u32, f32)]) -> Interactions {
    let mut t = Triplets::new(false);
    rows.iter().for_each(|&(u, i, v)| t.push(u, i, v, None));
    Interactions::from_triplets(&t, 3, 5, DuplicatePolicy::Last)
        .unwrap()
        .0
}

fn fold() -> Fold {
    let train = Dataset {
        name: "hand".into(),
        users: Arc::new(vec!["u0".to_string(), "u1".into(), "u2".into()].into()),
        items: Arc::new((0..5).map(|i| format!("i{i}")).collect::<Vec<_>>().into()),
        interactions: matrix(&[(0, 0, 5.0), (1, 1, 4.0), (2, 0, 3.0)]),
        feedback: Feedback::Explicit,
        item_features: None,
        user_features: None,
        sessions: None,
        report: Default::default(),
    };
    // u0 wants {1, 3}; u1 wants {0}; u2 has no test item and is not evaluated.
    Fold {
        train,
        test: matrix(&[(0, 1, 4.0), (0, 3, 2.0), (1, 0, 5.0)]),
        candidates: None,
    }
}

fn fixed(name: &str, scores: Vec<f32>) -> Candidate<'static> {
    Candidate {
        name: name.into(),
        spec: serde_json::json!({ "model": name }),
        fit: Box::new(
            move |_d: &Dataset, _o: &FitOptions<'_>| -> Result<Box<dyn Recommender>> {
                Ok(Box::new(Fixed(scores.clone())))
            },
        ),
    }
}

#[test]
fn metrics_and_run_files_match_hand_computation() {
    let folds = vec![fold()];
    // Ranking by score: 0 > 1 > 2 > 3 > 4. u0 excludes 0 → [1, 2]; u1 excludes 1 → [0, 2].
    let cands = vec![
        fixed("desc", vec![5.0, 4.0, 3.0, 2.0, 1.0]),
        fixed("asc", vec![1.0, 2.0, 3.0, 4.0, 5.0]),
    ];
    let cfg = EvalConfig {
        ks: vec![2],
        seed: 0,
        relevance_threshold: None,
        baseline: Some("asc".into()),
        auc: true,
        ranking: true,
        groups: Vec::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let sink = RunFiles(dir.path());
    let r = evaluate(
        "hand",
        "test",
        &folds,
        &cands,
        &cfg,
        Some(&sink),
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(r.users_evaluated, 2);
    let m = &r.models[0].metrics;
    // u0: hit at rank 1 of 2 relevant: P 1/2, R 1/2. u1: hit at rank 1: P 1/2, R 1.
    assert!((m[&metric("precision@2")].mean - 0.5).abs() < 1e-12);
    assert!((m[&metric("recall@2")].mean - 0.75).abs() < 1e-12);
    assert!((m[&metric("mrr@2")].mean - 1.0).abs() < 1e-12);
    // u0 AUC: candidates 1..4; positives 1 (s4), 3 (s2); negatives 2 (s3), 4 (s1) → 3/4. u1: 0 beats 2,3,4 → 1.
    assert!((m[&metric("auc")].mean - 0.875).abs() < 1e-12);
    // Graded NDCG u0: gains 4 at rank 1; ideal 4, 2 → 4 / (4 + 2/log2(3)).
    let g0 = 4.0 / (4.0 + 2.0 / 3f64.log2());
    assert!((m[&metric("ndcg_graded@2")].mean - (g0 + 1.0) / 2.0).abs() < 1e-12);
    // "asc": u0 gets [4, 3] (hit 3 at rank 2), u1 gets [4, 3] (no hit).
    let a = &r.models[1].metrics;
    assert!((a[&metric("precision@2")].mean - 0.25).abs() < 1e-12);
    assert!(r.models[0].vs_baseline.contains_key(&metric("precision@2")));
    assert!(
        r.models[1].vs_baseline.is_empty(),
        "the baseline is not tested against itself"
    );
    // Test ratings 4, 2, 5 against a constant 3: errors 1, −1, 2.
    assert!((m[&metric("rmse")].mean - 2f64.sqrt()).abs() < 1e-12);
    assert!((m[&metric("mae")].mean - 4.0 / 3.0).abs() < 1e-12);
    let run = std::fs::read_to_string(dir.path().join("runs/desc.fold0.run")).unwrap();
    assert_eq!(run.lines().next().unwrap(), "u0 Q0 i1 1 4 desc");
    assert_eq!(run.lines().count(), 4);
    // Coverage@2: items shown {1, 2, 0} of 5.
    assert!((m[&metric("coverage@2")].mean - 0.6).abs() < 1e-12);
}

#[test]
fn unknown_baseline_and_zero_k_are_errors() {
    let folds = vec![fold()];
    let cands = vec![fixed("a", vec![0.0; 5])];
    let mut cfg = EvalConfig {
        ks: vec![2],
        seed: 0,
        relevance_threshold: None,
        baseline: Some("zzz".into()),
        auc: false,
        ranking: true,
        groups: Vec::new(),
    };
    assert!(evaluate("h", "t", &folds, &cands, &cfg, None, &|_, _| {}).is_err());
    cfg.baseline = None;
    cfg.ks = vec![0];
    assert!(evaluate("h", "t", &folds, &cands, &cfg, None, &|_, _| {}).is_err());
}

#[test]
fn group_figures_partition_the_users_and_average_back_to_the_whole() {
    let ds = reco_core::synth::scalable(
        &reco_core::synth::ScalableConfig {
            users: 200,
            items: 80,
            interactions: 4_000,
            seed: 2,
            ..Default::default()
        },
        &|_, _| {},
    )
    .expect("data");
    let folds =
        reco_core::split::split(&ds, &reco_core::split::Protocol::Holdout { ratio: 0.2 }, 1)
            .expect("split");
    let spec = reco_models::ModelSpec::from_json(r#"{"model": "popularity"}"#).expect("spec");
    let cands = vec![Candidate {
        name: "pop".into(),
        spec: serde_json::Value::Null,
        fit: spec.into_fit_fn(),
    }];
    let cfg = EvalConfig {
        ks: vec![10],
        seed: 1,
        relevance_threshold: None,
        baseline: None,
        auc: false,
        ranking: true,
        groups: vec!["country".into(), "age_band".into()],
    };
    let r = evaluate("s", "h", &folds, &cands, &cfg, None, &|_, _| {}).expect("evaluate");
    let m = &r.models[0];
    let all = m.metrics[&metric("ndcg@10")];
    for field in ["country", "age_band"] {
        let groups = &m.groups[field];
        assert!(groups.len() >= 2, "{field}: {groups:?}");
        let n: usize = groups.values().map(|g| g[&metric("ndcg@10")].n).sum();
        assert_eq!(n, all.n, "{field}: every user in exactly one group");
        let weighted: f64 = groups
            .values()
            .map(|g| g[&metric("ndcg@10")].mean * g[&metric("ndcg@10")].n as f64)
            .sum::<f64>()
            / n as f64;
        assert!(
            (weighted - all.mean).abs() < 1e-12,
            "{field}: {weighted} vs {}",
            all.mean
        );
    }
    let html = reco_eval::html::eval_report(&r);
    assert!(html.contains("id=\"groups-country\"") && html.contains("id=\"groups-country-table\""));
    // Data without user features cannot be grouped: a clear error, not an empty table.
    let mut bare = folds.clone();
    bare[0].train.user_features = None;
    let err = evaluate("s", "h", &bare, &cands, &cfg, None, &|_, _| {}).expect_err("no features");
    assert!(err.to_string().contains("user features"), "{err}");
}
