//! The search: spaces read strictly, samplers that cover their ranges and repeat themselves,
//! TPE against random search on a known function, and whole searches on synthetic data that
//! never look at the test part and resume to the same trials.

use std::collections::BTreeSet;

use reco_core::split::{split, Protocol};
use reco_core::synth::{scalable, ScalableConfig};
use reco_tune::search::Proposer;
use reco_tune::space::{set, Dist};
use reco_tune::{tune, validation_folds, Select, Space, Strategy, TrialStore, TuneConfig};
use serde_json::json;

fn space(text: &str) -> reco_core::Result<Space> {
    let t: toml::Table = toml::from_str(text).expect("toml");
    Space::from_toml(&t)
}

#[test]
fn spaces_are_read_strictly() {
    let s = space(
        "factors = { int = [8, 64], log = true }\nreg = { float = [0.01, 1.0] }\n\
         solver = { choice = [\"cg\", \"cholesky\"] }",
    )
    .expect("valid");
    let paths: Vec<&str> = s.params.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["factors", "reg", "solver"], "sorted by path");
    assert_eq!(
        s.params[0].dist,
        Dist::Int {
            lo: 8,
            hi: 64,
            log: true
        }
    );
    for bad in [
        "factors = 8",
        "factors = { int = [8] }",
        "factors = { int = [64, 8] }",
        "factors = { int = [0, 8], log = true }",
        "factors = { int = [8, 9.5] }",
        "reg = { float = [0.0, 1.0], log = true }",
        "reg = { float = [1.0, nan] }",
        "reg = { float = [0.1, 1.0], steps = 3 }",
        "reg = { float = [0.1, 1.0], int = [1, 2] }",
        "solver = { choice = [] }",
        "solver = { choice = [\"a\"], log = true }",
    ] {
        assert!(space(bad).is_err(), "accepted {bad}");
    }
    assert!(space("").is_err(), "an empty space");
}

#[test]
fn values_stay_in_their_ranges_and_integers_are_equally_likely() {
    let d = Dist::Int {
        lo: 3,
        hi: 5,
        log: false,
    };
    let (a, b) = d.internal();
    let mut counts = [0usize; 3];
    for k in 0..3000 {
        let x = a + (b - a) * (k as f64 + 0.5) / 3000.0;
        let v = d.value(x).as_i64().expect("int");
        counts[(v - 3) as usize] += 1;
    }
    assert_eq!(counts, [1000, 1000, 1000], "hi as likely as lo");
    let f = Dist::Float {
        lo: 0.001,
        hi: 10.0,
        log: true,
    };
    let (a, b) = f.internal();
    // Half of a log-uniform range lies below the geometric mean.
    let mid = f.value((a + b) / 2.0).as_f64().expect("float");
    assert!((mid - 0.1).abs() < 1e-9, "{mid}");
    assert_eq!(f.value(b + 5.0).as_f64(), Some(10.0), "clamped");
}

#[test]
fn a_grid_visits_every_point_once_and_a_short_one_a_seeded_sample() {
    let s =
        space("a = { int = [1, 3] }\nb = { choice = [\"x\", \"y\"] }\nc = { float = [0.0, 1.0] }")
            .expect("space");
    let p = Proposer::new(&s, Strategy::Grid { steps: 3 }, 1, 1000).expect("grid");
    assert_eq!(p.capacity(), Some(3 * 2 * 3));
    let points: BTreeSet<String> = (0..18)
        .map(|i| {
            serde_json::to_string(&s.values(&p.propose(i, &[]).expect("point"))).expect("json")
        })
        .collect();
    assert_eq!(points.len(), 18, "18 distinct points");
    assert!(points.iter().any(|v| v.contains("\"c\":0.5")), "{points:?}");
    let few = Proposer::new(&s, Strategy::Grid { steps: 3 }, 1, 5).expect("grid");
    assert_eq!(few.capacity(), Some(5));
    let again = Proposer::new(&s, Strategy::Grid { steps: 3 }, 1, 5).expect("grid");
    for i in 0..5 {
        assert_eq!(few.propose(i, &[]).ok(), again.propose(i, &[]).ok());
    }
}

/// Minimises (x - 0.3)² + (log10 y + 2)² over x in [0, 1], y in [1e-4, 1] log-uniform.
fn search_loss(strategy: Strategy, seed: u64, trials: usize) -> f64 {
    let s = space("x = { float = [0.0, 1.0] }\ny = { float = [0.0001, 1.0], log = true }")
        .expect("space");
    let p = Proposer::new(&s, strategy, seed, trials).expect("proposer");
    let mut history = Vec::new();
    for i in 0..trials {
        let x = p.propose(i, &history).expect("proposal");
        let v = s.values(&x);
        let (a, b) = (v["x"].as_f64().expect("x"), v["y"].as_f64().expect("y"));
        history.push((x, (a - 0.3).powi(2) + (b.log10() + 2.0).powi(2)));
    }
    history.iter().map(|h| h.1).fold(f64::INFINITY, f64::min)
}

#[test]
fn tpe_finds_a_minimum_closer_than_random_search() {
    let (mut tpe, mut random) = (0.0, 0.0);
    for seed in 1..=8 {
        tpe += search_loss(Strategy::Tpe { startup: 10 }, seed, 60);
        random += search_loss(Strategy::Random, seed, 60);
    }
    assert!(tpe < random * 0.5, "tpe {tpe} random {random}");
    assert_eq!(
        search_loss(Strategy::Tpe { startup: 10 }, 3, 30),
        search_loss(Strategy::Tpe { startup: 10 }, 3, 30),
        "the same seed, the same search"
    );
}

#[test]
fn paths_reach_nested_parameters_and_misspellings_are_named() {
    let mut spec =
        json!({"model": "pipeline", "sources": [{"factors": 8}], "ranker": {"trees": 10}});
    set(&mut spec, "sources.0.factors", json!(32)).expect("array path");
    set(&mut spec, "ranker.trees", json!(50)).expect("object path");
    assert_eq!(spec["sources"][0]["factors"], 32);
    assert_eq!(spec["ranker"]["trees"], 50);
    assert!(set(&mut spec, "sources.3.factors", json!(1)).is_err());
    assert!(set(&mut spec, "rankr.trees", json!(1)).is_err());
    let base = reco_tune::full_spec(json!({"model": "ials"})).expect("base");
    let err = space("factrs = { int = [8, 16] }")
        .expect("space")
        .check(&base)
        .expect_err("misspelt");
    assert!(err.to_string().contains("factrs"), "{err}");
    let err = space("factors = { int = [0, 16] }")
        .expect("space")
        .check(&base)
        .expect_err("factors 0 is invalid");
    assert!(err.to_string().contains("factors = 0"), "{err}");
}

fn data() -> reco_core::Dataset {
    scalable(
        &ScalableConfig {
            users: 300,
            items: 120,
            interactions: 9_000,
            seed: 5,
            ..Default::default()
        },
        &|_, _| {},
    )
    .expect("data")
}

fn config(strategy: Strategy, trials: usize) -> TuneConfig {
    TuneConfig {
        metric: "ndcg@10".parse().expect("metric"),
        trials,
        strategy,
        seed: 9,
        parallel: 2,
        validation: Protocol::Holdout { ratio: 0.2 },
        relevance_threshold: None,
        halving: None,
        select: Select::Best,
        windows: 1,
    }
}

#[test]
fn a_search_picks_its_best_validation_trial_and_scores_the_test_part_once() {
    let ds = data();
    let outer = split(&ds, &Protocol::Holdout { ratio: 0.2 }, 9).expect("split");
    let s = space("factors = { int = [2, 32], log = true }\nregularization = { float = [0.001, 1.0], log = true }")
        .expect("space");
    let base = json!({"model": "ials", "epochs": 5});
    let store = TrialStore::memory();
    let t = tune(
        "synth",
        &base,
        &s,
        &outer,
        &config(Strategy::Random, 6),
        &store,
        &|_| {},
    )
    .expect("tune");
    assert_eq!(t.trials.len(), 6);
    let best = t
        .trials
        .iter()
        .filter_map(|x| x.value.map(|v| (v, x.trial)))
        .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a });
    assert_eq!(t.folds[0].best_trial, best.1);
    assert_eq!(t.folds[0].validation, best.0);
    assert_eq!(t.best_spec["factors"], t.folds[0].params["factors"]);
    // The test figure is the winner refitted on the training part and scored on the test
    // part: the evaluator gives the same on that fold.
    let spec = reco_models::ModelSpec::from_value(t.best_spec.clone()).expect("spec");
    let c = reco_eval::Candidate {
        name: "w".into(),
        spec: t.best_spec.clone(),
        fit: spec.into_fit_fn(),
    };
    let cfg = reco_eval::EvalConfig {
        ks: vec![10],
        seed: 9,
        relevance_threshold: None,
        baseline: None,
        auc: false,
        ranking: true,
        groups: Vec::new(),
    };
    let r = reco_eval::evaluate("synth", "x", &outer, &[c], &cfg, None, &|_, _| {}).expect("eval");
    let ndcg = r.models[0].metrics[&"ndcg@10".parse().expect("metric")].mean;
    assert!(
        (ndcg - t.test_mean).abs() < 1e-12,
        "{ndcg} vs {}",
        t.test_mean
    );
    // Validation differs from test: the trials never saw the test part.
    assert!(t.folds[0].validation != t.test_mean);
}

#[test]
fn validation_data_come_from_the_training_part_only() {
    let ds = data();
    let outer = split(&ds, &Protocol::Holdout { ratio: 0.2 }, 9).expect("split");
    let inner = split(&outer[0].train, &Protocol::Holdout { ratio: 0.2 }, 9).expect("inner");
    let test = &outer[0].test;
    for f in &inner {
        for u in 0..ds.n_users() as u32 {
            for &i in f
                .test
                .user_items(u)
                .iter()
                .chain(f.train.interactions.user_items(u))
            {
                assert!(
                    test.user_items(u).binary_search(&i).is_err(),
                    "user {u} item {i} of the outer test part is in the search's data"
                );
            }
        }
    }
}

#[test]
fn an_interrupted_search_resumes_to_the_same_trials() {
    let ds = data();
    let outer = split(&ds, &Protocol::Holdout { ratio: 0.2 }, 9).expect("split");
    let s = space("factors = { int = [2, 32], log = true }\nalpha = { float = [0.5, 8.0] }")
        .expect("space");
    let base = json!({"model": "ials", "epochs": 4});
    let cfg = config(Strategy::Tpe { startup: 3 }, 8);
    let header = json!({"test": "resume"});
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = TrialStore::open(&dir.path().join("a.jsonl"), &header).expect("store");
    let a = tune("synth", &base, &s, &outer, &cfg, &whole, &|_| {}).expect("tune");
    // The first four trials and half a line, as a kill leaves the file.
    let text = std::fs::read_to_string(dir.path().join("a.jsonl")).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_by_key(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .ok()
            .and_then(|v| v["trial"].as_u64())
            .unwrap_or(0)
    });
    let cut = format!("{}\n{{\"fold\":0,\"tri", lines[..5].join("\n"));
    std::fs::write(dir.path().join("b.jsonl"), cut).expect("write");
    let part = TrialStore::open(&dir.path().join("b.jsonl"), &header).expect("store");
    assert_eq!(part.trials().len(), 4);
    let b = tune("synth", &base, &s, &outer, &cfg, &part, &|_| {}).expect("resume");
    let key = |t: &reco_tune::Trial| {
        (
            t.trial,
            serde_json::to_string(&t.params).expect("json"),
            t.value.map(f64::to_bits),
        )
    };
    let mut ka: Vec<_> = a.trials.iter().map(key).collect();
    let mut kb: Vec<_> = b.trials.iter().map(key).collect();
    ka.sort();
    kb.sort();
    assert_eq!(ka, kb);
    assert!(TrialStore::open(&dir.path().join("b.jsonl"), &json!({"test": "other"})).is_err());
}

#[test]
fn successive_halving_runs_the_best_of_each_rung_on_a_larger_budget() {
    let ds = data();
    let outer = split(&ds, &Protocol::Holdout { ratio: 0.2 }, 9).expect("split");
    let s = space("factors = { int = [2, 32], log = true }\nregularization = { float = [0.001, 1.0], log = true }")
        .expect("space");
    for (base, epochs) in [
        (json!({"model": "ials", "epochs": 8}), true),
        (json!({"model": "item-knn"}), false),
    ] {
        let s = if epochs {
            s.clone()
        } else {
            space("max_neighbours = { int = [5, 60] }").expect("space")
        };
        let mut cfg = config(Strategy::Random, 9);
        cfg.halving = Some(reco_tune::Halving { eta: 3, rungs: 3 });
        let store = TrialStore::memory();
        let t = tune("synth", &base, &s, &outer, &cfg, &store, &|_| {}).expect("tune");
        let at = |r: usize| t.trials.iter().filter(|x| x.rung == r).collect::<Vec<_>>();
        assert_eq!((at(0).len(), at(1).len(), at(2).len()), (9, 3, 1));
        assert!(at(0).iter().all(|x| (x.budget - 1.0 / 9.0).abs() < 1e-12));
        assert!(at(2).iter().all(|x| x.budget == 1.0));
        // Rung 1 holds the three best of rung 0.
        let mut first: Vec<(f64, usize)> = at(0)
            .iter()
            .map(|x| (x.value.expect("value"), x.trial))
            .collect();
        first.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut promoted: Vec<usize> = at(1).iter().map(|x| x.trial).collect();
        promoted.sort_unstable();
        let mut best3: Vec<usize> = first.iter().take(3).map(|x| x.1).collect();
        best3.sort_unstable();
        assert_eq!(promoted, best3);
        // The winner ran on the full budget, and its specification keeps the full epochs.
        assert_eq!(t.folds[0].best_trial, at(2)[0].trial);
        if epochs {
            assert_eq!(t.best_spec["epochs"], 8);
        }
    }
    assert!("1:3".parse::<reco_tune::Halving>().is_err());
    assert_eq!(
        "3".parse::<reco_tune::Halving>().ok(),
        Some(reco_tune::Halving { eta: 3, rungs: 3 })
    );
}

/// With `select = significant` a best trial no better than the base hands back the base, and
/// one significantly better is kept. `cg_steps` does nothing under the Cholesky solver, so
/// every trial of the first search scores exactly what the base does.
#[test]
fn significant_selection_keeps_the_base_unless_a_trial_beats_it() {
    let ds = data();
    let outer = split(&ds, &Protocol::Holdout { ratio: 0.2 }, 9).expect("split");
    let cfg = TuneConfig {
        select: Select::Significant,
        ..config(Strategy::Random, 3)
    };
    let run = |base: serde_json::Value, text: &str| {
        tune(
            "synth",
            &base,
            &space(text).expect("space"),
            &outer,
            &cfg,
            &TrialStore::memory(),
            &|_| {},
        )
        .expect("tune")
    };
    let base = json!({"model": "ials", "epochs": 5, "solver": "cholesky", "cg_steps": 3});
    let same = run(base.clone(), "cg_steps = { int = [4, 9] }");
    let f = &same.folds[0];
    let check = f.base_check.as_ref().expect("checked");
    assert!(check.kept_base, "{check:?}");
    assert_eq!(check.diff, 0.0);
    assert_eq!(f.winner_label(), "base");
    assert!(f.params.is_empty());
    assert_eq!(f.spec["cg_steps"], 3);
    assert_eq!(f.validation, check.base_validation);
    // On this data a heavily regularised one-factor model (close to popularity) is far ahead
    // of 32 factors: as a trial against a 32-factor base it wins, and says by how much.
    let base = json!({"model": "ials", "epochs": 5, "factors": 32, "regularization": 0.05});
    let better = run(
        base,
        "factors = { choice = [1] }\nregularization = { choice = [10.0] }",
    );
    let f = &better.folds[0];
    let check = f.base_check.as_ref().expect("checked");
    assert!(
        !check.kept_base && check.diff > 0.0 && check.p_value < 0.05,
        "{check:?}"
    );
    assert_eq!(f.spec["factors"], 1);
    assert!(f.validation > check.base_validation);
}

/// Rolling validation windows: each window's validation interactions are each user's latest
/// share of what the window before it trained on, so windows never overlap, each is older than
/// the one before, and a window's training part is exactly the previous one's minus its
/// validation part.
#[test]
fn validation_windows_roll_back_in_time() {
    let ds = data();
    let cfg = TuneConfig {
        validation: Protocol::Temporal { fraction: 0.2 },
        windows: 3,
        ..config(Strategy::Random, 1)
    };
    let w = validation_folds(&ds, &cfg, 4).expect("windows");
    assert_eq!(w.len(), 3);
    let ts =
        |m: &reco_core::Interactions, u: u32| m.user_timestamps(u).expect("timestamps").to_vec();
    for k in 1..3 {
        let (newer, older) = (&w[k - 1], &w[k]);
        assert_eq!(
            older.train.interactions.nnz() + older.test.nnz(),
            newer.train.interactions.nnz()
        );
        for u in 0..ds.n_users() as u32 {
            for &i in older.test.user_items(u) {
                assert!(newer.test.get(u, i).is_none(), "windows overlap");
                assert!(newer.train.interactions.get(u, i).is_some());
                assert!(older.train.interactions.get(u, i).is_none());
            }
            let (old, new) = (ts(&older.test, u), ts(&newer.test, u));
            if let (Some(a), Some(b)) = (old.iter().max(), new.iter().min()) {
                assert!(a <= b, "user {u}: a window is newer than the one before it");
            }
        }
    }
    // One window is the validation protocol alone; k-fold validation keeps its own folds.
    let one = validation_folds(
        &ds,
        &TuneConfig {
            windows: 1,
            ..cfg.clone()
        },
        4,
    )
    .expect("one");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].test.nnz(), w[0].test.nnz());
    let kfold = TuneConfig {
        validation: Protocol::KFold { k: 2 },
        ..cfg
    };
    assert_eq!(validation_folds(&ds, &kfold, 4).expect("kfold").len(), 2);
}
