//! # reco-testing
//!
//! The behaviour suite every model kind passes, as a dev-dependency of the crates that define
//! kinds (so that test code stays out of the libraries).
//!
//! [`run_suite`] turns every example of every kind it is given ([`reco_models::Kind::examples`])
//! into one test, so a new kind is covered as soon as it is in a registry list: nobody edits a
//! test file, and a kind without examples fails. Each test checks, on
//! [`reco_core::synth::structured`] data:
//!
//! - the specification round-trips through JSON and TOML, and a saved model reports it back;
//! - the declared [`reco_models::Capabilities`] match what the fitted model answers;
//! - exactly k unseen, distinct items when k unseen items exist, every unseen item when k is
//!   large, only allowed items under an `allow` list (the best of them by the scores, unless
//!   the kind builds lists as a whole);
//! - no NaN and no +∞ score (−∞ means "cannot be scored" and ranks last);
//! - the same output for the same seed, and identical scores after a save/load round trip;
//! - k items and finite scores for an anonymous user, with an empty and with a non-empty
//!   history (none of the history when it is excluded, which list-building kinds must honour
//!   themselves);
//! - ranking models beat random recall by half again, rating models beat the global mean.
#![warn(missing_docs)]

use reco_core::model::{Filter, FitOptions, Query, Recommender};
use reco_core::split::{split, Protocol};
use reco_core::synth::structured;
use reco_core::Dataset;
use reco_models::{KindEntry, ModelSpec};

/// What a failed check says.
pub type Failure = String;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($msg)+));
        }
    };
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> Result<T, Failure> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn recall_at_10(
    model: &dyn Recommender,
    train: &Dataset,
    test: &reco_core::Interactions,
) -> Result<f64, Failure> {
    let (mut hits, mut total) = (0usize, 0usize);
    for u in 0..test.n_users() as u32 {
        let rel = test.user_items(u);
        if rel.is_empty() {
            continue;
        }
        let filter = Filter {
            exclude: train.interactions.user_items(u),
            allow: None,
        };
        let recs = ok(model.recommend(&Query::user(u), 10, &filter), "recommend")?;
        hits += recs
            .iter()
            .filter(|s| rel.binary_search(&s.item).is_ok())
            .count();
        total += rel.len();
    }
    Ok(hits as f64 / total.max(1) as f64)
}

/// Drops `null` members (absent options), which TOML cannot write.
fn without_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .into_iter()
            .filter(|(_, x)| !x.is_null())
            .map(|(k, x)| (k, without_nulls(x)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(a) => a.into_iter().map(without_nulls).collect(),
        x => x,
    }
}

/// The specification survives JSON text and TOML text unchanged.
pub fn check_round_trip(spec: &ModelSpec) -> Result<(), Failure> {
    let name = spec.kind();
    let value = ok(spec.to_value(), "to_value")?;
    ensure!(
        value.get("model").and_then(|m| m.as_str()) == Some(name),
        "{name}: the serialised spec names its kind"
    );
    let again = ok(ModelSpec::from_value(value.clone()), "from_value")?;
    ensure!(&again == spec, "{name}: value round trip changed the spec");
    let text = ok(serde_json::to_string(spec), "JSON text")?;
    let again = ok(ModelSpec::from_json(&text), "parse JSON text")?;
    ensure!(&again == spec, "{name}: JSON round trip changed the spec");
    let toml_text = ok(toml::to_string(&without_nulls(value)), "TOML text")?;
    let again: ModelSpec = ok(toml::from_str(&toml_text), "parse TOML text")?;
    ensure!(
        &again == spec,
        "{name}: TOML round trip changed the spec:\n{toml_text}"
    );
    Ok(())
}

fn check_scores(name: &str, scores: &[f32], what: &str) -> Result<(), Failure> {
    ensure!(
        scores.iter().all(|s| !s.is_nan() && *s != f32::INFINITY),
        "{name}: {what}: NaN or +inf score"
    );
    Ok(())
}

/// Runs every check on `spec`.
pub fn behaviour(spec: &ModelSpec) -> Result<(), Failure> {
    check_round_trip(spec)?;
    let data = ok(structured(), "data")?;
    let name = spec.kind();
    let opts = FitOptions {
        seed: 11,
        progress: None,
        validation: None,
        checkpoint: None,
    };
    let model = ok(spec.fit(&data, &opts), "fit")?;
    let n = data.n_items();
    ensure!(model.n_items() == n, "{name}: scores every catalogue item");
    ensure!(&model.spec() == spec, "{name}: the model reports its spec");

    let caps = spec.capabilities();
    ensure!(
        caps.rates == model.as_rating_predictor().is_some(),
        "{name}: declares rates = {} but the model says otherwise",
        caps.rates
    );
    ensure!(
        caps.similar_items == model.as_similar_items().is_some(),
        "{name}: declares similar_items = {} but the model says otherwise",
        caps.similar_items
    );
    ensure!(
        caps.embeddings == model.as_embeddings().is_some(),
        "{name}: declares embeddings = {} but the model says otherwise",
        caps.embeddings
    );

    let mut a = vec![0f32; n];
    let allow: Vec<u32> = (0..n as u32).step_by(7).collect();
    for u in [0u32, 5, 17] {
        let seen = data.interactions.user_items(u);
        let k = 20;
        let filter = Filter {
            exclude: seen,
            allow: None,
        };
        let recs = ok(model.recommend(&Query::user(u), k, &filter), "recommend")?;
        ensure!(
            recs.len() == k.min(n - seen.len()),
            "{name}: {} items instead of {k}",
            recs.len()
        );
        ensure!(
            recs.iter().all(|s| seen.binary_search(&s.item).is_err()),
            "{name}: recommended a seen item"
        );
        let mut items: Vec<u32> = recs.iter().map(|s| s.item).collect();
        items.sort_unstable();
        items.dedup();
        ensure!(items.len() == recs.len(), "{name}: duplicate items");
        let all = ok(
            model.recommend(&Query::user(u), n, &filter),
            "recommend all",
        )?;
        ensure!(
            all.len() == n - seen.len(),
            "{name}: every unseen item when k is large"
        );
        ok(model.score(&Query::user(u), &mut a), "score")?;
        check_scores(name, &a, "known user")?;

        // An allow list: only allowed unseen items, the best of them by the model's scores.
        let filter = Filter {
            exclude: seen,
            allow: Some(&allow),
        };
        let got = ok(model.recommend(&Query::user(u), k, &filter), "allow")?;
        let want = reco_core::topk::top_k(&a, k, seen, |i| allow.binary_search(&i).is_err());
        let open = allow
            .iter()
            .filter(|i| seen.binary_search(i).is_err())
            .count();
        ensure!(
            got.len() == k.min(open),
            "{name}: {} allowed items instead of {}",
            got.len(),
            k.min(open)
        );
        ensure!(
            got.iter()
                .all(|s| allow.binary_search(&s.item).is_ok()
                    && seen.binary_search(&s.item).is_err()),
            "{name}: recommended an item outside the allow list"
        );
        let (g, w): (Vec<u32>, Vec<u32>) = (
            got.iter().map(|s| s.item).collect(),
            want.iter().map(|s| s.item).collect(),
        );
        ensure!(
            caps.listwise || g == w,
            "{name}: with an allow list, not the best allowed items by score: {g:?} vs {w:?}"
        );
    }

    // Scoring a block of users at once (factor models multiply matrices) gives each user's
    // own scores, and the block's top lists are the one-by-one lists.
    let users: Vec<u32> = vec![3, 0, 17, 5, 3, 42];
    let mut block = vec![0f32; users.len() * n];
    ok(model.score_users(&users, &mut block), "score_users")?;
    for (j, &u) in users.iter().enumerate() {
        ok(model.score(&Query::user(u), &mut a), "score")?;
        let row = &block[j * n..(j + 1) * n];
        let worst = a
            .iter()
            .zip(row)
            .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
            .fold(0f32, f32::max);
        ensure!(
            worst <= 1e-4,
            "{name}: score_users differs from score for user {u} by {worst}"
        );
    }
    ensure!(
        model.score_users(&users, &mut block[1..]).is_err(),
        "{name}: score_users accepts a buffer of the wrong size"
    );
    let lists = ok(
        model.recommend_users(&users, 10, &|j| Filter {
            exclude: data.interactions.user_items(users[j]),
            allow: None,
        }),
        "recommend_users",
    )?;
    for (&u, list) in users.iter().zip(&lists) {
        let filter = Filter {
            exclude: data.interactions.user_items(u),
            allow: None,
        };
        let one = ok(model.recommend(&Query::user(u), 10, &filter), "recommend")?;
        // Rounding may swap two items whose scores differ in the last bits only.
        let same = one.len() == list.len()
            && one.iter().zip(list).all(|(x, y)| {
                x.item == y.item || (x.score - y.score).abs() <= 1e-4 * x.score.abs().max(1.0)
            });
        ensure!(
            same,
            "{name}: recommend_users differs from recommend for user {u}"
        );
    }

    let again = ok(spec.fit(&data, &opts), "refit")?;
    let mut b = vec![0f32; n];
    for u in [0u32, 42] {
        ok(model.score(&Query::user(u), &mut a), "score")?;
        ok(again.score(&Query::user(u), &mut b), "score")?;
        ensure!(a == b, "{name}: same seed, different scores");
    }

    let dir = ok(tempfile::tempdir(), "tempdir")?;
    ok(
        reco_models::save(
            model.as_ref(),
            &data,
            dir.path(),
            serde_json::Value::Null,
            reco_core::artifact::Existing::Replace,
        ),
        "save",
    )?;
    let loaded = ok(reco_models::load(dir.path()), "load")?;
    ensure!(
        &loaded.model.spec() == spec,
        "{name}: the loaded model reports another spec"
    );
    for u in [0u32, 42, 399] {
        ok(model.score(&Query::user(u), &mut a), "score")?;
        ok(loaded.model.score(&Query::user(u), &mut b), "score")?;
        ensure!(a == b, "{name}: save/load changes scores");
        ensure!(
            loaded.seen(u) == data.interactions.user_items(u),
            "{name}: histories round trip"
        );
    }

    // Anonymous users: without a history, and with one (whose items are excluded).
    let recs = ok(
        model.recommend(&Query::history(&[]), 10, &Filter::default()),
        "anonymous",
    )?;
    ensure!(recs.len() == 10, "{name}: anonymous user gets k items");
    ok(model.score(&Query::history(&[]), &mut a), "score")?;
    check_scores(name, &a, "empty history")?;
    let items = data.interactions.user_items(5);
    let values = data.interactions.user_values(5);
    let history: Vec<(u32, f32)> = items.iter().copied().zip(values.iter().copied()).collect();
    let filter = Filter {
        exclude: items,
        allow: None,
    };
    let recs = ok(
        model.recommend(&Query::history(&history), 10, &filter),
        "history",
    )?;
    ensure!(recs.len() == 10, "{name}: a history gets k items");
    ensure!(
        recs.iter().all(|s| items.binary_search(&s.item).is_err()),
        "{name}: recommended an item of the history"
    );
    ok(model.score(&Query::history(&history), &mut a), "score")?;
    check_scores(name, &a, "anonymous history")?;

    // Ranking models beat random on held-out data; rating models beat the global mean.
    let folds = ok(split(&data, &Protocol::Holdout { ratio: 0.2 }, 3), "split")?;
    let fold = &folds[0];
    let m = ok(spec.fit(&fold.train, &opts), "fit on the fold")?;
    if let Some(rp) = m.as_rating_predictor() {
        let t = &fold.train.interactions;
        let mu = t.values().iter().map(|&v| v as f64).sum::<f64>() / t.nnz() as f64;
        let (mut se, mut se_mu) = (0.0, 0.0);
        for (u, i, v) in fold.test.iter() {
            let p = rp.predict(u, i);
            ensure!(p.is_finite(), "{name}: non-finite rating prediction");
            se += (p as f64 - v as f64).powi(2);
            se_mu += (mu - v as f64).powi(2);
        }
        let nt = fold.test.nnz() as f64;
        ensure!(
            se < se_mu,
            "{name}: RMSE {:.4} does not beat the global mean's {:.4}",
            (se / nt).sqrt(),
            (se_mu / nt).sqrt()
        );
    }
    if spec.ranks() {
        let random = ok(ModelSpec::from_json(r#"{"model":"random"}"#), "random spec")?;
        let r = ok(random.fit(&fold.train, &opts), "fit random")?;
        let rm = recall_at_10(m.as_ref(), &fold.train, &fold.test)?;
        let rr = recall_at_10(r.as_ref(), &fold.train, &fold.test)?;
        ensure!(
            rm > rr * 1.5,
            "{name}: recall@10 {rm:.4} does not beat random {rr:.4}"
        );
    }
    Ok(())
}

/// Runs every check on `spec`; panics with a message naming the broken behaviour.
pub fn check_behaviour(spec: &ModelSpec) {
    if let Err(e) = behaviour(spec) {
        panic!("{e}");
    }
}

/// The test binary's `main`: one test per example of each kind in `kinds` (plus a failing
/// one for a kind without examples), run in parallel by libtest's rules and flags.
pub fn run_suite(kinds: &[&'static KindEntry]) -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let mut trials = Vec::new();
    for &k in kinds {
        let examples = k.examples();
        if examples.is_empty() {
            trials.push(libtest_mimic::Trial::test(
                format!("{}::has_examples", k.name),
                move || Err(format!("{} has no examples", k.name).into()),
            ));
        }
        for (i, spec) in examples.into_iter().enumerate() {
            trials.push(libtest_mimic::Trial::test(
                format!("{}::example_{i}", k.name),
                move || behaviour(&spec).map_err(Into::into),
            ));
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}
