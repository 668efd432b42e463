//! Hand-computed losses and cold-start behaviour of the two-tower model.

use super::*;

fn ln_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

#[test]
fn in_batch_softmax_matches_a_hand_computation_with_log_q_and_masking() {
    let dev = Device::Cpu;
    let u = Tensor::new(&[[1f32, 0.], [0., 1.]], &dev).unwrap();
    let v = Tensor::new(&[[1f32, 0.], [0.6, 0.8]], &dev).unwrap();
    let (q0, q1) = (0.5f64, 0.25f64);
    let logq = [q0.ln() as f32, q1.ln() as f32];
    let tau = 0.5;
    let got = in_batch_softmax(&u, &v, &[0, 1], Some(&logq), tau)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    // logits[r][c] = u_r·v_c / τ − ln Q(c); loss = mean over rows of −log softmax(row)[r].
    let l = [
        [1.0 / tau - q0.ln(), 0.6 / tau - q1.ln()],
        [0.0 / tau - q0.ln(), 0.8 / tau - q1.ln()],
    ];
    let want = ((ln_sum_exp(&l[0]) - l[0][0]) + (ln_sum_exp(&l[1]) - l[1][1])) / 2.0;
    assert!((f64::from(got) - want).abs() < 1e-5, "{got} vs {want}");
    // Without the correction the popular item is no longer favoured as a negative.
    let plain = in_batch_softmax(&u, &v, &[0, 1], None, tau)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let l = [[1.0 / tau, 0.6 / tau], [0.0, 0.8 / tau]];
    let want = ((ln_sum_exp(&l[0]) - l[0][0]) + (ln_sum_exp(&l[1]) - l[1][1])) / 2.0;
    assert!((f64::from(plain) - want).abs() < 1e-5);
    // The same item twice: each row's other column is its own item, masked, so loss 0.
    let same = in_batch_softmax(&u, &v, &[3, 3], None, tau)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(same.abs() < 1e-6, "{same}");
}

/// The loss built from candle's own operations, as it was before the fused operation.
fn composed_softmax(
    u: &Tensor,
    v: &Tensor,
    items: &[u32],
    logq: Option<&[f32]>,
    tau: f64,
) -> candle_core::Result<Tensor> {
    let dev = u.device();
    let b = items.len();
    let mut logits = (u.matmul(&v.t()?)? / tau)?;
    if let Some(q) = logq {
        let cols: Vec<f32> = items.iter().map(|&i| q[i as usize]).collect();
        logits = logits.broadcast_sub(&Tensor::new(cols.as_slice(), dev)?.unsqueeze(0)?)?;
    }
    let mut mask = vec![0f32; b * b];
    for (r, &a) in items.iter().enumerate() {
        for (c, &x) in items.iter().enumerate() {
            if r != c && a == x {
                mask[r * b + c] = -1e9;
            }
        }
    }
    let logits = (logits + Tensor::from_vec(mask, (b, b), dev)?)?;
    let target = Tensor::arange(0u32, b as u32, dev)?;
    candle_nn::loss::cross_entropy(&logits, &target)
}

/// The fused loss and its hand-written gradient against candle's composition and autodiff, on
/// a random batch with repeated items (masked columns) and the log-Q offsets.
#[test]
fn fused_softmax_matches_candles_composition_in_value_and_gradient() {
    let dev = Device::Cpu;
    let mut r = ChaCha8Rng::seed_from_u64(3);
    let (b, d) = (9, 5);
    let items: Vec<u32> = (0..b).map(|_| r.gen_range(0..6u32)).collect();
    assert!(
        items
            .iter()
            .enumerate()
            .any(|(k, i)| items[..k].contains(i)),
        "{items:?}"
    );
    let logq: Vec<f32> = (0..6).map(|k| -1.0 - k as f32 * 0.3).collect();
    let draw =
        |r: &mut ChaCha8Rng| -> Vec<f32> { (0..b * d).map(|_| r.gen_range(-1f32..1.0)).collect() };
    let u = candle_core::Var::from_vec(draw(&mut r), (b, d), &dev).unwrap();
    let v = candle_core::Var::from_vec(draw(&mut r), (b, d), &dev).unwrap();
    for q in [None, Some(logq.as_slice())] {
        let fused = in_batch_softmax(u.as_tensor(), v.as_tensor(), &items, q, 0.2).unwrap();
        let plain = composed_softmax(u.as_tensor(), v.as_tensor(), &items, q, 0.2).unwrap();
        let (a, c) = (
            fused.to_scalar::<f32>().unwrap(),
            plain.to_scalar::<f32>().unwrap(),
        );
        assert!(
            (a - c).abs() < 1e-5 * (1.0 + c.abs()),
            "loss {a} against {c}"
        );
        let (ga, gc) = (fused.backward().unwrap(), plain.backward().unwrap());
        let flat = |g: &candle_core::backprop::GradStore, var: &candle_core::Var| -> Vec<f32> {
            g.get(var)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        for var in [&u, &v] {
            let (x, y) = (flat(&ga, var), flat(&gc, var));
            for (x, y) in x.iter().zip(&y) {
                assert!((x - y).abs() < 1e-5, "gradient {x} against {y}");
            }
        }
    }
}

fn fit(data: &Dataset, json: serde_json::Value) -> TwoTower {
    let p: TwoTowerParams = serde_json::from_value(json).unwrap();
    let opts = FitOptions {
        seed: 5,
        ..Default::default()
    };
    TwoTower::fit(&p, data, &opts).unwrap()
}

#[test]
fn a_cold_user_is_placed_by_features_the_same_way_in_and_out_of_the_dataset() {
    let data = reco_core::synth::structured().unwrap();
    assert!(
        data.user_features.is_some(),
        "structured data has user features"
    );
    // User 0 loses every interaction: a cold user the dataset still describes.
    let keep: Vec<bool> = (0..data.n_users() as u32)
        .flat_map(|u| std::iter::repeat_n(u != 0, data.interactions.user_len(u)))
        .collect();
    let cold = data.with_interactions(data.interactions.select(&keep));
    let m = fit(
        &cold,
        serde_json::json!({"epochs": 1, "layers": [16], "embedding_dim": 8}),
    );
    let (toks, _) = m.user_rows.row(0);
    assert!(!toks.is_empty(), "the cold user has features");
    assert!(
        toks.iter().all(|&t| t as usize >= cold.n_users()),
        "but no identity"
    );
    let names: Vec<&str> = toks
        .iter()
        .map(|&t| m.user_names[t as usize].as_str())
        .collect();
    let outside = m.user_vector_from_features(&names, &[]).unwrap();
    let inside = m.user_vector(0).unwrap();
    for (a, b) in outside.iter().zip(inside) {
        assert!((a - b).abs() < 1e-5, "{outside:?} vs {inside:?}");
    }
    assert!(m
        .user_vector_from_features(&["no-such=feature"], &[])
        .is_err());
}

#[test]
fn cold_items_score_higher_for_users_who_like_their_category() {
    let data = reco_core::synth::structured().unwrap();
    let m = fit(
        &data,
        serde_json::json!({"epochs": 6, "layers": [32], "embedding_dim": 16, "recent_items": 0}),
    );
    let cat = data
        .item_features
        .as_ref()
        .and_then(|f| f.primary_category())
        .expect("structured data has item categories")
        .clone();
    let top_category = |u: u32| {
        let mut counts = std::collections::HashMap::<u32, usize>::new();
        for &i in data.interactions.user_items(u) {
            for &c in cat.of(i) {
                *counts.entry(c).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|&(c, n)| (n, c))
            .map(|(c, _)| c)
    };
    let tops: Vec<Option<u32>> = (0..data.n_users() as u32).map(top_category).collect();
    let cold: Vec<u32> = (0..data.n_items() as u32)
        .filter(|&i| data.interactions.item_len(i) == 0)
        .collect();
    assert_eq!(cold.len(), 5);
    let mut wins = 0;
    for &i in &cold {
        let c = cat.of(i)[0];
        let v = m.item_vector(i).unwrap();
        let (mut fan, mut nf, mut other, mut no) = (0.0, 0, 0.0, 0);
        for u in 0..data.n_users() as u32 {
            let s = dot(m.user_vector(u).unwrap(), v);
            if tops[u as usize] == Some(c) {
                fan += s;
                nf += 1;
            } else {
                other += s;
                no += 1;
            }
        }
        if nf > 0 && fan / nf as f32 > other / no.max(1) as f32 {
            wins += 1;
        }
    }
    assert!(
        wins >= 4,
        "only {wins} of 5 cold items favour their category's fans"
    );
}

/// With every row of every table in every batch (one batch holding all interactions, ids
/// only), lazy AdamW is dense AdamW: the two fits agree up to float rounding.
#[test]
fn sparse_updates_equal_dense_ones_when_every_row_is_in_every_batch() {
    use reco_core::loaders::{DatasetBuilder, LoadOptions};
    let mut b = DatasetBuilder::new(true);
    for (u, i) in [
        ("a", "x"),
        ("a", "y"),
        ("b", "y"),
        ("b", "z"),
        ("c", "z"),
        ("c", "x"),
        ("d", "w"),
        ("d", "x"),
    ] {
        let (u, i) = (b.users.get_or_insert(u), b.items.get_or_insert(i));
        b.triplets.push(u, i, 1.0, None);
    }
    let data = b.finish("t", &LoadOptions::default()).unwrap();
    let spec = |sparse: bool| {
        serde_json::json!({"user_fields": [], "item_fields": [], "recent_items": 0,
            "text_buckets": 0, "layers": [8, 4], "embedding_dim": 6, "batch_size": 64,
            "epochs": 6, "learning_rate": 0.05, "weight_decay": 0.01, "sparse_updates": sparse})
    };
    let (lazy, dense) = (fit(&data, spec(true)), fit(&data, spec(false)));
    assert_eq!(lazy.users.len(), 16);
    let moved = lazy
        .users
        .iter()
        .zip(
            &fit(
                &data,
                serde_json::json!({"user_fields": [], "item_fields": [],
            "recent_items": 0, "text_buckets": 0, "layers": [8, 4], "embedding_dim": 6,
            "batch_size": 64, "epochs": 1, "learning_rate": 0.05}),
            )
            .users,
        )
        .any(|(a, b)| (a - b).abs() > 1e-3);
    assert!(moved, "training did not move the vectors");
    for (a, b) in lazy
        .users
        .iter()
        .chain(&lazy.items)
        .zip(dense.users.iter().chain(&dense.items))
    {
        assert!((a - b).abs() < 1e-4, "lazy {a} against dense {b}");
    }
}

/// The user and item vectors of a fit (what scoring uses).
fn vectors(m: &TwoTower) -> (Vec<f32>, Vec<f32>) {
    (m.users.clone(), m.items.clone())
}

/// A fit stopped after one epoch and resumed from its checkpoint ends bit for bit where an
/// unbroken fit ends, including the best-epoch keeping of validation; a finished checkpoint
/// extends with more epochs; another seed's checkpoint and a damaged file are refused.
#[test]
fn a_fit_resumed_from_its_checkpoint_equals_an_unbroken_fit() {
    let data = reco_core::synth::structured().unwrap();
    let split = reco_core::split::split(
        &data,
        &reco_core::split::Protocol::Holdout { ratio: 0.2 },
        1,
    )
    .unwrap();
    let (train, valid) = (&split[0].train, &split[0].test);
    let params = |epochs: usize| TwoTowerParams {
        epochs,
        layers: vec![32, 16],
        batch_size: 64,
        patience: 5,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |epochs: usize, seed: u64, checkpoint: Option<&std::path::Path>| {
        let opts = FitOptions {
            seed,
            validation: Some(valid),
            checkpoint,
            ..Default::default()
        };
        TwoTower::fit(&params(epochs), train, &opts)
    };
    let unbroken = vectors(&run(3, 5, None).unwrap());
    let first = vectors(&run(1, 5, Some(dir.path())).unwrap());
    assert_ne!(first, unbroken, "one epoch is not three");
    assert!(dir.path().join(crate::checkpoint::FILE).exists());
    let resumed = vectors(&run(3, 5, Some(dir.path())).unwrap());
    assert_eq!(resumed, unbroken);
    // Run again with the finished checkpoint: nothing left to train, the same model.
    assert_eq!(vectors(&run(3, 5, Some(dir.path())).unwrap()), unbroken);
    // Fewer epochs than the checkpoint has done is refused, not silently served.
    let e = run(2, 5, Some(dir.path())).err().unwrap();
    assert!(e.to_string().contains("3 epochs done"), "{e}");
    // Another seed is another fit.
    let e = run(3, 6, Some(dir.path())).err().unwrap();
    assert!(e.to_string().contains("another fit"), "{e}");
    // A damaged file is named, not a panic.
    let path = dir.path().join(crate::checkpoint::FILE);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = run(3, 5, Some(dir.path())).err().unwrap();
    assert!(e.to_string().contains("unusable checkpoint"), "{e}");
}

#[test]
fn the_towers_side_by_side_train_the_model_one_thread_trains() {
    // Each tower runs its passes on a thread of its own when there are two: that must not
    // change a single bit.
    let data = reco_core::synth::structured().unwrap();
    for loss in [Loss::Softmax, Loss::Bce, Loss::Mse] {
        let p = TwoTowerParams {
            epochs: 2,
            layers: vec![16, 8],
            loss,
            ..Default::default()
        };
        let fit = |parallel: bool| {
            crate::train::SIDE_BY_SIDE.with(|c| c.set(Some(parallel)));
            let m = TwoTower::fit(&p, &data, &FitOptions::default());
            crate::train::SIDE_BY_SIDE.with(|c| c.set(None));
            vectors(&m.unwrap())
        };
        assert_eq!(fit(false), fit(true), "{loss:?}");
    }
}
