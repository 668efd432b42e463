//! The behaviour suite every model must pass, usable from any crate's tests.
//!
//! It checks, on structured synthetic data: only unseen items when seen ones are excluded;
//! exactly k items when k unseen items exist; the same output for the same seed; identical
//! scores after a save/load round trip; higher recall than random; and sane answers for a user
//! without history and for items without interactions.

use reco_core::model::{Filter, FitOptions, Query, Recommender};
use reco_core::split::{split, Protocol};
use reco_core::synth::{scalable, ScalableConfig};
use reco_core::Dataset;

use crate::{ModelSpec, RandomParams};

/// Small structured data: strong category tastes, Zipf popularity, a few cold items.
pub fn structured_data() -> Dataset {
    let c = ScalableConfig {
        users: 400,
        items: 600,
        interactions: 24_000,
        categories: 6,
        taste_share: 0.8,
        seed: 7,
        ..Default::default()
    };
    let ds = scalable(&c, &|_, _| {}).expect("valid synthetic config");
    // Remove every interaction of the last 5 items: they become cold catalogue items.
    let keep: Vec<bool> = ds.interactions.indices().iter().map(|&i| i < 595).collect();
    ds.with_interactions(ds.interactions.select(&keep))
}

fn recall_at_10(model: &dyn Recommender, train: &Dataset, test: &reco_core::Interactions) -> f64 {
    let (mut hits, mut total) = (0usize, 0usize);
    for u in 0..test.n_users() as u32 {
        let rel = test.user_items(u);
        if rel.is_empty() {
            continue;
        }
        let recs = model
            .recommend(
                &Query::user(u),
                10,
                &Filter {
                    exclude: train.interactions.user_items(u),
                    allow: None,
                },
            )
            .expect("recommend");
        hits += recs
            .iter()
            .filter(|s| rel.binary_search(&s.item).is_ok())
            .count();
        total += rel.len();
    }
    hits as f64 / total.max(1) as f64
}

/// Runs the suite on `spec`; panics with a message naming the broken behaviour.
pub fn check_behaviour(spec: &ModelSpec) {
    let data = structured_data();
    let name = spec.kind();
    let opts = FitOptions {
        seed: 11,
        progress: None,
        validation: None,
    };
    let model = spec.fit(&data, &opts).expect("fit");
    assert_eq!(
        model.n_items(),
        data.n_items(),
        "{name}: scores every catalogue item"
    );

    for u in [0u32, 5, 17] {
        let seen = data.interactions.user_items(u);
        let k = 20;
        let recs = model
            .recommend(
                &Query::user(u),
                k,
                &Filter {
                    exclude: seen,
                    allow: None,
                },
            )
            .expect("recommend");
        assert_eq!(
            recs.len(),
            k.min(data.n_items() - seen.len()),
            "{name}: exactly k items"
        );
        assert!(
            recs.iter().all(|s| seen.binary_search(&s.item).is_err()),
            "{name}: recommended a seen item"
        );
        let mut items: Vec<u32> = recs.iter().map(|s| s.item).collect();
        items.sort_unstable();
        items.dedup();
        assert_eq!(items.len(), recs.len(), "{name}: duplicate items");
        let all = model
            .recommend(
                &Query::user(u),
                data.n_items(),
                &Filter {
                    exclude: seen,
                    allow: None,
                },
            )
            .expect("all");
        assert_eq!(
            all.len(),
            data.n_items() - seen.len(),
            "{name}: every unseen item when k is large"
        );
    }

    let again = spec.fit(&data, &opts).expect("refit");
    let (mut a, mut b) = (vec![0f32; data.n_items()], vec![0f32; data.n_items()]);
    for u in [0u32, 42] {
        model.score(&Query::user(u), &mut a).expect("score");
        again.score(&Query::user(u), &mut b).expect("score");
        assert_eq!(a, b, "{name}: same seed, same scores");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    crate::save(model.as_ref(), &data, dir.path(), serde_json::Value::Null).expect("save");
    let loaded = crate::load(dir.path()).expect("load");
    for u in [0u32, 42, 399] {
        model.score(&Query::user(u), &mut a).expect("score");
        loaded.model.score(&Query::user(u), &mut b).expect("score");
        assert_eq!(a, b, "{name}: save/load changes scores");
        assert_eq!(
            loaded.seen(u),
            data.interactions.user_items(u),
            "{name}: histories round trip"
        );
    }

    // A user with no history and cold items: finite scores, k items.
    let recs = model
        .recommend(&Query::history(&[]), 10, &Filter::default())
        .expect("anonymous");
    assert_eq!(recs.len(), 10, "{name}: anonymous user gets k items");
    model.score(&Query::history(&[]), &mut a).expect("score");
    assert!(a.iter().all(|s| !s.is_nan()), "{name}: NaN score");

    // Ranking models beat random on held-out data; rating models beat the global mean.
    let fold = &split(&data, &Protocol::Holdout { ratio: 0.2 }, 3).expect("split")[0];
    let m = spec.fit(&fold.train, &opts).expect("fit");
    if let Some(rp) = m.as_rating_predictor() {
        let mu = fold
            .train
            .interactions
            .values()
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>()
            / fold.train.interactions.nnz() as f64;
        let (mut se, mut se_mu) = (0.0, 0.0);
        for (u, i, v) in fold.test.iter() {
            let p = rp.predict(u, i);
            assert!(p.is_finite(), "{name}: non-finite rating prediction");
            se += (p as f64 - v as f64).powi(2);
            se_mu += (mu - v as f64).powi(2);
        }
        assert!(
            se < se_mu,
            "{name}: RMSE {:.4} does not beat the global mean's {:.4}",
            (se / fold.test.nnz() as f64).sqrt(),
            (se_mu / fold.test.nnz() as f64).sqrt()
        );
    }
    if spec.ranks() {
        let r = ModelSpec::Random(RandomParams::default())
            .fit(&fold.train, &opts)
            .expect("fit random");
        let (rm, rr) = (
            recall_at_10(m.as_ref(), &fold.train, &fold.test),
            recall_at_10(r.as_ref(), &fold.train, &fold.test),
        );
        assert!(
            rm > rr * 1.5,
            "{name}: recall@10 {rm:.4} does not beat random {rr:.4}"
        );
    }
}
