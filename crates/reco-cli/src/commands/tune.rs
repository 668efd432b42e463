//! `reco tune`: hyper-parameter search over a tune file (a base model and a search space),
//! trials scored on validation data carved from the training part, the winner scored once on
//! the test part; resumable from its trials file.

use std::path::PathBuf;

use anyhow::{Context, Result};

use reco_core::split::{self, Protocol};
use reco_core::Error;
use reco_eval::Metric;
use reco_tune::{Space, Strategy, TrialStore, TuneConfig, TuneProgress};

use crate::progress;
use crate::source::DataArgs;

/// Options of `reco tune`.
#[derive(clap::Args, Debug)]
pub(crate) struct TuneArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Ready-made training file (with --test): the search runs on it, the winner is scored on
    /// the test file (instead of cutting --data with --protocol).
    #[arg(long, requires = "test")]
    train: Option<PathBuf>,
    /// Ready-made test file.
    #[arg(long, requires = "train")]
    test: Option<PathBuf>,
    /// Tune file (TOML): a [model] table (the base specification, any kind, pipelines
    /// included) and a [space] table of ranges (`factors = { int = [16, 256], log = true }`);
    /// optional `metric`, `trials`, `strategy`, `validation` keys, which flags override.
    #[arg(long)]
    space: PathBuf,
    /// Outer protocol: kfold:K, holdout:R, loo, temporal:F, timecut:Q, cold-users:F,
    /// cold-items:F. The test part of each fold is scored once, by the winner.
    #[arg(long, default_value = "holdout:0.2")]
    protocol: String,
    /// Protocol that carves validation data from each training part (default: the outer
    /// protocol's own kind; holdout:0.2 for k-fold).
    #[arg(long)]
    validation: Option<String>,
    /// Metric to optimise: ndcg@10, recall@20, hit_rate@10, auc, rmse, mae, …
    #[arg(long)]
    metric: Option<String>,
    /// Trials per outer fold.
    #[arg(long)]
    trials: Option<usize>,
    /// grid[:STEPS], random, tpe[:STARTUP].
    #[arg(long)]
    strategy: Option<String>,
    /// Successive halving ETA[:RUNGS] (e.g. 3): every trial first runs on 1/ETA^(RUNGS-1) of
    /// the budget (epochs, else training interactions), the best 1/ETA of each rung go on.
    #[arg(long)]
    halving: Option<String>,
    /// How each outer fold's winner is chosen: `best` (the best validation value) or
    /// `significant` (the best trial if it beats the base specification significantly on the
    /// validation users, else the base) [default: best]
    #[arg(long)]
    select: Option<String>,
    /// Validation windows: with N > 1 the validation protocol is applied again to what the
    /// previous window left for training, N times (rolling origin), and trials are scored on
    /// all of them [default: 1]
    #[arg(long)]
    windows: Option<usize>,
    /// Trials run at once (default: one per core).
    #[arg(long)]
    parallel: Option<usize>,
    /// Seed of the splits, the sampler and every fit.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Test ratings below this are not relevant (explicit data).
    #[arg(long)]
    relevance_threshold: Option<f32>,
    /// Directory for trials.jsonl (resumable: run the same command again to continue),
    /// tune.json, report.html and the winning specification best.json / best.toml.
    #[arg(long)]
    out: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// What a tune file holds.
struct TuneFile {
    base: serde_json::Value,
    space: Space,
    metric: Option<String>,
    trials: Option<usize>,
    strategy: Option<String>,
    validation: Option<String>,
    halving: Option<String>,
    select: Option<String>,
    windows: Option<usize>,
}

fn read_tune_file(path: &std::path::Path) -> Result<TuneFile> {
    let text = reco_core::input::read_text(path)?;
    let bad = |m: String| Error::param("space", format!("{}: {m}", path.display()));
    let doc: toml::Table =
        toml::from_str(&text).map_err(|e| bad(format!("not valid TOML: {e}")))?;
    for key in doc.keys() {
        if ![
            "model",
            "space",
            "metric",
            "trials",
            "strategy",
            "validation",
            "halving",
            "select",
            "windows",
        ]
        .contains(&key.as_str())
        {
            return Err(bad(format!(
                "unknown key {key:?} (model, space, metric, trials, strategy, validation, halving, select, windows)"
            ))
            .into());
        }
    }
    let model = doc
        .get("model")
        .and_then(|m| m.as_table())
        .ok_or_else(|| bad("a [model] table (the base specification) is needed".into()))?;
    let base = reco_models::strict_value(toml::Value::Table(model.clone()))
        .map_err(|e| bad(format!("[model]: {e}")))?;
    let space = doc
        .get("space")
        .and_then(|s| s.as_table())
        .ok_or_else(|| bad("a [space] table of parameter ranges is needed".into()))?;
    let space = Space::from_toml(space).with_context(|| path.display().to_string())?;
    let text_of = |k: &str| -> Result<Option<String>> {
        match doc.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("{k} is a string")).into()),
        }
    };
    let count = |k: &str| -> Result<Option<usize>> {
        match doc.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if *n > 0 => Ok(usize::try_from(*n).ok()),
            Some(_) => Err(bad(format!("{k} is an integer >= 1")).into()),
        }
    };
    let trials = count("trials")?;
    Ok(TuneFile {
        base,
        space,
        metric: text_of("metric")?,
        trials,
        strategy: text_of("strategy")?,
        validation: text_of("validation")?,
        halving: text_of("halving")?,
        select: text_of("select")?,
        windows: count("windows")?,
    })
}

/// The validation protocol that matches an outer one.
fn default_validation(outer: &Protocol) -> Protocol {
    match outer {
        Protocol::KFold { .. } => Protocol::Holdout { ratio: 0.2 },
        Protocol::TimeCut { at } if *at > 1.0 => Protocol::Temporal { fraction: 0.2 },
        p => p.clone(),
    }
}

/// Runs `reco tune`.
pub(crate) fn run(a: TuneArgs) -> Result<()> {
    let file = read_tune_file(&a.space)?;
    let outer: Protocol = a.protocol.parse()?;
    let validation: Protocol = match a.validation.as_ref().or(file.validation.as_ref()) {
        Some(v) => v.parse()?,
        None => default_validation(&outer),
    };
    let metric_text = a
        .metric
        .clone()
        .or(file.metric.clone())
        .unwrap_or_else(|| "ndcg@10".into());
    let metric: Metric = metric_text
        .parse()
        .map_err(|e: String| Error::param("metric", e))?;
    let strategy: Strategy = a
        .strategy
        .as_deref()
        .or(file.strategy.as_deref())
        .unwrap_or("tpe")
        .parse()?;
    let cfg = TuneConfig {
        metric,
        trials: a.trials.or(file.trials).unwrap_or(30),
        strategy,
        seed: a.seed,
        parallel: a.parallel.unwrap_or_else(rayon::current_num_threads),
        validation,
        relevance_threshold: a.relevance_threshold,
        halving: a
            .halving
            .as_deref()
            .or(file.halving.as_deref())
            .map(str::parse)
            .transpose()?,
        select: a
            .select
            .as_deref()
            .or(file.select.as_deref())
            .unwrap_or("best")
            .parse()?,
        windows: a.windows.or(file.windows).unwrap_or(1),
    };
    cfg.check()?;
    // The whole search is checked before the data are read: the base, the paths, the ranges.
    let base = reco_tune::full_spec(file.base.clone())?;
    file.space.check(&base)?;
    if cfg.minimise()
        && !reco_models::ModelSpec::from_value(base.clone())?
            .capabilities()
            .rates
    {
        return Err(Error::param(
            "metric",
            format!("{} needs a model that predicts ratings", cfg.metric),
        )
        .into());
    }
    let (ds, folds, outer_text) = match (&a.train, &a.test) {
        (Some(tr), Some(te)) => {
            let f = a.data.load_pair(tr, te)?;
            let text = format!("files:{}+{}", tr.display(), te.display());
            (f.train.clone(), vec![f], text)
        }
        _ => {
            let ds = a.data.load()?;
            let folds = split::split(&ds, &outer, a.seed)?;
            (ds, folds, outer.to_string())
        }
    };
    let mut header = serde_json::json!({
        "search": "reco tune",
        "data": ds.name,
        "data_shape": [ds.n_users(), ds.n_items(), ds.interactions.nnz()],
        "protocol": outer_text,
        "validation": cfg.validation.to_string(),
        "metric": cfg.metric.to_string(),
        "strategy": cfg.strategy.to_string(),
        "halving": cfg.halving.map(|h| h.to_string()),
        // A grid's sample depends on how many points are drawn; other strategies continue.
        "grid_trials": matches!(cfg.strategy, Strategy::Grid { .. }).then_some(cfg.trials),
        "seed": cfg.seed,
        "parallel": cfg.parallel,
        "relevance_threshold": cfg.relevance_threshold,
        "model": base,
        "space": file.space.to_json(),
    });
    // Written only when used, so the files of searches from before windows existed resume.
    if cfg.windows > 1 {
        header["windows"] = cfg.windows.into();
    }
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let trials_path = a.out.join("trials.jsonl");
    let store = TrialStore::open(&trials_path, &header)?;
    let resumed = store.trials().len();
    if resumed > 0 {
        eprintln!(
            "resuming: {resumed} trials already in {}",
            trials_path.display()
        );
    }
    let bar = progress::bar(cfg.trials as u64, "tune");
    let b = bar.clone();
    let name = cfg.metric.to_string();
    let on_progress = move |p: TuneProgress| {
        b.set_length(p.total as u64);
        b.set_position(p.done as u64);
        let best = p.best.map_or("-".into(), |v| format!("{v:.4}"));
        b.set_message(format!(
            "fold {}/{} best {name} {best}",
            p.fold + 1,
            p.folds
        ));
    };
    let result = reco_tune::tune(
        &ds.name,
        &base,
        &file.space,
        &folds,
        &cfg,
        &store,
        &on_progress,
    );
    bar.finish_and_clear();
    let tuned = match result {
        Err(Error::Interrupted) => {
            return Err(anyhow::Error::from(Error::Interrupted).context(format!(
                "stopped; {} trials are saved in {}: run the same command to continue",
                store.trials().len(),
                trials_path.display()
            )))
        }
        r => r?,
    };
    let json = serde_json::to_string_pretty(&tuned)?;
    super::write_file(&a.out.join("tune.json"), json.as_bytes())?;
    let best = serde_json::to_string_pretty(&tuned.best_spec)?;
    super::write_file(&a.out.join("best.json"), best.as_bytes())?;
    let toml_text = toml::to_string(&without_nulls(tuned.best_spec.clone()))
        .map_err(|e| Error::param("model", format!("the winner as TOML: {e}")))?;
    super::write_file(&a.out.join("best.toml"), toml_text.as_bytes())?;
    super::write_file(
        &a.out.join("report.html"),
        reco_tune::html_report(&tuned, &file.space).as_bytes(),
    )?;
    if a.json {
        println!("{json}");
        return Ok(());
    }
    print_summary(&tuned, &a.out);
    Ok(())
}

/// TOML has no null: optional parameters left unset are simply left out.
fn without_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(without_nulls).collect())
        }
        v => v,
    }
}

fn print_summary(t: &reco_tune::Tuned, out: &std::path::Path) {
    let ok = t.trials.iter().filter(|x| x.value.is_some()).count();
    println!(
        "{} trials ({} failed); metric {} ({})",
        t.trials.len(),
        t.trials.len() - ok,
        t.metric,
        if t.minimise {
            "lower is better"
        } else {
            "higher is better"
        }
    );
    println!("| fold | best trial | validation | test | parameters |");
    println!("| ---: | ---: | ---: | ---: | --- |");
    for f in &t.folds {
        let params: Vec<String> = f.params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        println!(
            "| {} | {} | {:.4} | {:.4} | {} |",
            f.fold + 1,
            f.winner_label(),
            f.validation,
            f.test.get(&t.metric).copied().unwrap_or(f64::NAN),
            params.join(", ")
        );
    }
    println!(
        "test {} (mean over outer folds): {:.4}",
        t.metric, t.test_mean
    );
    println!(
        "wrote {0}/tune.json, {0}/trials.jsonl, {0}/report.html and the winner as {0}/best.json and {0}/best.toml",
        out.display()
    );
}
