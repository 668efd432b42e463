//! The subcommands.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use reco_core::model::{FitOptions, Progress, Recommender};
use reco_core::split::{self, Fold, Protocol};
use reco_core::{synth, Dataset};
use reco_eval::{evaluate, report, Candidate, EvalConfig, Report, RunFiles};
use reco_models::ModelSpec;

use crate::models::{self, Named};
use crate::progress;
use crate::source::DataArgs;

/// reco — build, evaluate and serve recommendations.
#[derive(Parser, Debug)]
#[command(name = "reco", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect, generate and split data.
    #[command(subcommand)]
    Data(DataCommand),
    /// Fit a model and write it as an artifact directory.
    Train {
        #[command(flatten)]
        data: DataArgs,
        /// Model: a name (`popularity`) or a JSON spec (`{"model":"popularity","weighting":"trending"}`).
        #[arg(long, default_value = "popularity")]
        model: String,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Hold out this fraction of the data (at random) for early stopping, for models that
        /// support it (svd); the model is trained on the rest.
        #[arg(long)]
        validation: Option<f64>,
        /// Artifact directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Evaluate models under a protocol, or on a ready-made train/test pair.
    Eval(Box<EvalArgs>),
    /// Evaluate a retrieval + ranking pipeline described in a TOML file (sources and budgets,
    /// models, ranker, re-rankers; see docs/pipeline.md), beside any --model given.
    Pipeline {
        /// The pipeline file.
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        eval: Box<EvalArgs>,
    },
    /// Fairness and popularity-bias audit of models on the first fold of a protocol: exposure by
    /// item-popularity group, popularity lift, accuracy by user group.
    Audit {
        #[command(flatten)]
        data: DataArgs,
        /// kfold:K, holdout:R, loo, temporal:F, timecut:Q|T, cold-users:F, cold-items:F.
        #[arg(long, default_value = "temporal:0.2")]
        protocol: String,
        /// A model (repeatable): a name or a JSON spec.
        #[arg(long)]
        model: Vec<String>,
        /// User fields to break accuracy down by (categorical, or numeric in quartile bands).
        #[arg(long, value_delimiter = ',')]
        by: Vec<String>,
        /// Cutoff.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Also audit each model trained on popularity-re-weighted data: values × count^−α.
        #[arg(long)]
        reweight: Option<f64>,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recommend for a user from a saved model.
    Recommend {
        /// Artifact directory written by `reco train`.
        #[arg(long)]
        model: PathBuf,
        /// External user id.
        #[arg(long)]
        user: String,
        /// Number of items.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Also recommend items the user already has.
        #[arg(long)]
        include_seen: bool,
        /// Say why each item is recommended.
        #[arg(long)]
        explain: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the user and item vectors of a saved embedding model (factor models, two-tower)
    /// as tab-separated files `users.tsv` and `items.tsv`: the external id, then the vector.
    ExportVectors {
        /// Artifact directory written by `reco train`.
        #[arg(long)]
        model: PathBuf,
        /// Directory to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Items similar to an item, from a saved model that can tell (kNN, content, co-visitation,
    /// RP3β, factor models).
    Similar {
        /// Artifact directory written by `reco train`.
        #[arg(long)]
        model: PathBuf,
        /// External item id.
        #[arg(long)]
        item: String,
        /// Number of items.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The main job: the notebook's data and protocol, every model, a comparison table.
    Demo {
        /// Seed of the data and of the split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// User whose recommendations are shown.
        #[arg(long, default_value = "2")]
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Counts, density, rating histogram, long-tail share, metadata fields.
    Inspect {
        #[command(flatten)]
        data: DataArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate synthetic data and write it as RecBole atomic files (NAME.inter, .item, .user, .session).
    Synth {
        /// `notebook`, or `scalable`.
        #[arg(long, default_value = "notebook")]
        preset: String,
        /// Scalable preset: users.
        #[arg(long)]
        users: Option<usize>,
        /// Scalable preset: items.
        #[arg(long)]
        items: Option<usize>,
        /// Scalable preset: interactions.
        #[arg(long)]
        interactions: Option<usize>,
        /// Scalable preset: Zipf exponent of popularity.
        #[arg(long)]
        zipf: Option<f64>,
        /// Scalable preset: latent taste dimensions.
        #[arg(long)]
        dims: Option<usize>,
        /// Scalable preset: categories.
        #[arg(long)]
        categories: Option<usize>,
        /// Scalable preset: skip sessions.
        #[arg(long)]
        no_sessions: bool,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Base name of the files.
        #[arg(long, default_value = "synth")]
        name: String,
    },
    /// Split data with a protocol and write train/test CSV files (user,item,rating[,timestamp]).
    Split {
        #[command(flatten)]
        data: DataArgs,
        /// kfold:K, holdout:R, loo, temporal:F, timecut:Q|T, cold-users:F, cold-items:F.
        #[arg(long, default_value = "loo")]
        protocol: String,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory: train.csv/test.csv, or fold-N/ for k-fold.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Options of `reco eval`.
#[derive(clap::Args, Debug)]
struct EvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Ready-made training file (with --test): evaluate on exactly these files.
    #[arg(long, requires = "test")]
    train: Option<PathBuf>,
    /// Ready-made test file.
    #[arg(long, requires = "train")]
    test: Option<PathBuf>,
    /// Directory written by `reco data split`: train.csv/test.csv, or fold-N/ for k-fold.
    #[arg(long, conflicts_with_all = ["train", "test"])]
    splits: Option<PathBuf>,
    /// kfold:K, holdout:R, loo, temporal:F, timecut:Q|T, cold-users:F, cold-items:F.
    #[arg(long, default_value = "loo")]
    protocol: String,
    /// Model file (TOML, [[model]] tables).
    #[arg(long)]
    models: Option<PathBuf>,
    /// A model (repeatable): a name or a JSON spec; used when --models is absent.
    #[arg(long)]
    model: Vec<String>,
    /// Cutoffs, comma-separated.
    #[arg(long, default_value = "5,10,20", value_delimiter = ',')]
    k: Vec<usize>,
    /// Seed of the split and of every fit.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Model to test the others against (paired t-test per metric).
    #[arg(long)]
    baseline: Option<String>,
    /// Test ratings below this are not relevant (explicit data).
    #[arg(long)]
    relevant_threshold: Option<f32>,
    /// Skip AUC (one pass over the catalogue per user).
    #[arg(long)]
    no_auc: bool,
    /// Only rating metrics (RMSE, MAE): skip ranking the catalogue for every test user.
    #[arg(long)]
    ratings_only: bool,
    /// Directory for results.json/.csv/.md, run files and qrels.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the JSON report instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Data(DataCommand::Inspect { data, json }) => inspect(&data.load()?, json),
        Command::Data(DataCommand::Synth {
            preset,
            users,
            items,
            interactions,
            zipf,
            dims,
            categories,
            no_sessions,
            seed,
            out,
            name,
        }) => {
            let ds = match preset.as_str() {
                "notebook" => synth::notebook(&synth::NotebookConfig {
                    seed,
                    ..Default::default()
                })?,
                "scalable" => {
                    let d = synth::ScalableConfig::default();
                    let c = synth::ScalableConfig {
                        users: users.unwrap_or(d.users),
                        items: items.unwrap_or(d.items),
                        interactions: interactions.unwrap_or(d.interactions),
                        zipf: zipf.unwrap_or(d.zipf),
                        dims: dims.unwrap_or(d.dims),
                        categories: categories.unwrap_or(d.categories),
                        sessions: !no_sessions,
                        seed,
                        ..d
                    };
                    let bar = progress::bar(c.users as u64, "generating users");
                    let ds = synth::scalable(&c, &|d, _| bar.set_position(d))?;
                    bar.finish_and_clear();
                    ds
                }
                other => bail!("unknown preset {other:?} (notebook, scalable)"),
            };
            let spinner = progress::spinner("writing files");
            synth::write_atomic(&ds, &out, &name)?;
            spinner.finish_and_clear();
            println!(
                "wrote {} users, {} items, {} interactions to {}/{name}.*",
                ds.n_users(),
                ds.n_items(),
                ds.interactions.nnz(),
                out.display()
            );
            Ok(())
        }
        Command::Data(DataCommand::Split {
            data,
            protocol,
            seed,
            out,
        }) => {
            let ds = data.load()?;
            let p: Protocol = protocol.parse()?;
            let folds = split::split(&ds, &p, seed)?;
            for (f, fold) in folds.iter().enumerate() {
                let dir = if folds.len() == 1 {
                    out.clone()
                } else {
                    out.join(format!("fold-{}", f + 1))
                };
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                write_csv(
                    &fold.train,
                    &fold.train.interactions,
                    &dir.join("train.csv"),
                )?;
                write_csv(&fold.train, &fold.test, &dir.join("test.csv"))?;
                if let Some(c) = &fold.candidates {
                    write_candidates(&fold.train, c, &dir.join("candidates.csv"))?;
                }
                println!(
                    "{}: train {} / test {} interactions",
                    dir.display(),
                    fold.train.interactions.nnz(),
                    fold.test.nnz()
                );
            }
            Ok(())
        }
        Command::Train {
            data,
            model,
            seed,
            validation,
            out,
        } => {
            let full = data.load()?;
            let folds;
            let (ds, held_out) = match validation {
                Some(r) => {
                    folds = split::split(&full, &Protocol::Holdout { ratio: r }, seed)?;
                    (&folds[0].train, Some(&folds[0].test))
                }
                None => (&full, None),
            };
            let named = models::parse_one(&model)?;
            let bar = progress::bar(0, &named.name);
            let report = |p: Progress<'_>| {
                bar.set_length(p.total);
                bar.set_position(p.done);
            };
            let m = named.spec.fit(
                ds,
                &FitOptions {
                    seed,
                    progress: Some(&report),
                    validation: held_out,
                },
            )?;
            bar.finish_and_clear();
            // Saved with the whole data, so `recommend` excludes validation items too.
            reco_models::save(
                m.as_ref(),
                &full,
                &out,
                serde_json::json!({ "dataset": ds.name, "seed": seed, "validation": validation }),
            )?;
            if let Some((eps, delta)) = m.privacy() {
                println!("privacy: ({eps:.3}, {delta:e})-differentially private per rating");
            }
            println!("saved {} to {}", named.name, out.display());
            Ok(())
        }
        Command::Eval(args) => eval(*args, Vec::new()),
        Command::Pipeline { config, eval: args } => {
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("reading {}", config.display()))?;
            let spec = reco_pipeline::spec_from_toml(&text)
                .with_context(|| format!("{}", config.display()))?;
            let name = spec
                .params::<reco_pipeline::Pipeline>()
                .and_then(|p| p.name.clone())
                .or_else(|| config.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "pipeline".into());
            eval(*args, vec![Named { name, spec }])
        }
        Command::Audit {
            data,
            protocol,
            model,
            by,
            k,
            reweight,
            seed,
            json,
        } => crate::audit::audit(&data, &protocol, &model, &by, k, reweight, seed, json),
        Command::Similar {
            model,
            item,
            k,
            json,
        } => crate::lookup::similar(&model, &item, k, json),
        Command::Recommend {
            model,
            user,
            k,
            include_seen,
            explain,
            json,
        } => crate::lookup::recommend(&model, &user, k, include_seen, explain, json),
        Command::ExportVectors { model, out } => crate::lookup::export_vectors(&model, &out),
        Command::Demo { seed, user, json } => crate::demo::demo(seed, &user, json),
    }
}

/// Writes the items a fold ranks among (cold-item splits): one item id per line under `item`.
fn write_candidates(ds: &Dataset, items: &[u32], path: &Path) -> Result<()> {
    let mut text = String::from("item\n");
    for &i in items {
        text.push_str(ds.items.id(i));
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Reads a `candidates.csv` written by `reco data split`; every id must be in the fold.
fn read_candidates(ds: &Dataset, path: &Path) -> Result<Vec<u32>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut items = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, id)| {
            ds.items.get(id.trim()).with_context(|| {
                format!(
                    "{}:{}: item {id:?} is in neither train nor test",
                    path.display(),
                    n + 2
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    items.sort_unstable();
    items.dedup();
    Ok(items)
}

fn write_csv(ds: &Dataset, m: &reco_core::Interactions, path: &Path) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let ts = m.timestamps();
    writeln!(
        w,
        "user,item,rating{}",
        if ts.is_some() { ",timestamp" } else { "" }
    )?;
    let quote = |s: &str| {
        if s.contains([',', '"']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for u in 0..m.n_users() as u32 {
        let r = m.row_range(u);
        for p in r {
            let i = m.indices()[p];
            write!(
                w,
                "{},{},{}",
                quote(ds.users.id(u)),
                quote(ds.items.id(i)),
                m.values()[p]
            )?;
            match ts {
                Some(t) => writeln!(w, ",{}", t[p])?,
                None => writeln!(w)?,
            }
        }
    }
    w.flush()?;
    Ok(())
}

fn inspect(ds: &Dataset, json: bool) -> Result<()> {
    let s = ds.stats();
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("dataset        {}", s.name);
    println!("feedback       {:?}", s.feedback);
    println!("users          {}", s.users);
    println!("items          {}", s.items);
    println!("interactions   {}", s.interactions);
    println!("density        {:.6}", s.density);
    println!(
        "per user       min {} / median {} / max {}",
        s.min_user_interactions, s.median_user_interactions, s.max_user_interactions
    );
    println!(
        "empty          {} users, {} items without interactions",
        s.users_without_interactions, s.items_without_interactions
    );
    println!(
        "long tail      top 20% of items hold {:.1}% of interactions",
        100.0 * s.top20_item_share
    );
    if let (Some(a), Some(b)) = (s.min_timestamp, s.max_timestamp) {
        println!("time range     {a} .. {b}");
    }
    if !s.rating_histogram.is_empty() {
        println!("ratings");
        let max = s
            .rating_histogram
            .iter()
            .map(|x| x.1)
            .max()
            .unwrap_or(1)
            .max(1);
        for (bin, count) in &s.rating_histogram {
            println!(
                "  {bin:>4}  {count:>10}  {}",
                "#".repeat((40 * count).div_ceil(max))
            );
        }
    }
    if !s.item_metadata_fields.is_empty() {
        println!("item metadata  {}", s.item_metadata_fields.join(", "));
    }
    if !s.user_metadata_fields.is_empty() {
        println!("user metadata  {}", s.user_metadata_fields.join(", "));
    }
    if s.sessions > 0 {
        println!("sessions       {}", s.sessions);
    }
    println!(
        "memory         {:.1} MiB (interaction matrix)",
        s.memory_bytes as f64 / (1 << 20) as f64
    );
    let r = &s.report;
    if r.duplicates.rows_merged > 0 || r.skipped_rows > 0 || r.below_threshold > 0 {
        println!(
            "load report    {} rows read, {} merged duplicates, {} skipped, {} below threshold",
            r.rows_read, r.duplicates.rows_merged, r.skipped_rows, r.below_threshold
        );
    }
    Ok(())
}

pub(crate) fn candidates(list: &[Named]) -> Vec<Candidate<'static>> {
    list.iter()
        .map(|n| {
            let spec: ModelSpec = n.spec.clone();
            Candidate {
                name: n.name.clone(),
                spec: spec.to_value().unwrap_or_default(),
                fit: Box::new(
                    move |d: &Dataset,
                          o: &FitOptions<'_>|
                          -> reco_core::Result<Box<dyn Recommender>> {
                        // Trait upcasting: a fitted Model is a Recommender.
                        let m: Box<dyn Recommender> = spec.fit(d, o)?;
                        Ok(m)
                    },
                ),
            }
        })
        .collect()
}

pub(crate) fn eval_progress() -> (indicatif::ProgressBar, impl Fn(&str, Progress<'_>) + Sync) {
    let bar = progress::bar(0, "");
    let b = bar.clone();
    (bar, move |stage: &str, p: Progress<'_>| {
        b.set_message(format!("{stage} {}", p.stage));
        b.set_length(p.total);
        b.set_position(p.done);
    })
}

fn eval(a: EvalArgs, extra: Vec<Named>) -> Result<()> {
    let pipeline_only = !extra.is_empty() && a.models.is_none() && a.model.is_empty();
    let mut list = match &a.models {
        Some(path) => models::read_file(path)?,
        None => a
            .model
            .iter()
            .map(|m| models::parse_one(m))
            .collect::<Result<Vec<_>>>()?,
    };
    if list.is_empty() && !pipeline_only {
        list = vec![
            models::parse_one("popularity")?,
            models::parse_one("random")?,
        ];
    }
    list.extend(extra);
    let list = models::unique(list)?;
    let (folds, protocol, name): (Vec<Fold>, String, String) = match (&a.train, &a.test, &a.splits)
    {
        (Some(tr), Some(te), _) => {
            let f = a.data.load_pair(tr, te)?;
            let name = f.train.name.clone();
            (
                vec![f],
                format!("files:{}+{}", tr.display(), te.display()),
                name,
            )
        }
        (_, _, Some(dir)) => {
            let pairs = split_pairs(dir)?;
            let folds = pairs
                .iter()
                .map(|(tr, te)| {
                    let mut fold = a.data.load_pair(tr, te)?;
                    let cands = tr.with_file_name("candidates.csv");
                    if cands.exists() {
                        fold.candidates = Some(read_candidates(&fold.train, &cands)?);
                    }
                    Ok(fold)
                })
                .collect::<Result<Vec<_>>>()?;
            (
                folds,
                format!("splits:{}", dir.display()),
                dir.display().to_string(),
            )
        }
        _ => {
            let ds = a.data.load()?;
            let p: Protocol = a.protocol.parse()?;
            (
                split::split(&ds, &p, a.seed)?,
                p.to_string(),
                ds.name.clone(),
            )
        }
    };
    let mut ks = a.k.clone();
    ks.sort_unstable();
    ks.dedup();
    let cfg = EvalConfig {
        ks,
        seed: a.seed,
        relevance_threshold: a.relevant_threshold,
        baseline: a.baseline.clone(),
        auc: !a.no_auc,
        ranking: !a.ratings_only,
    };
    let cands = candidates(&list);
    let (bar, on_progress) = eval_progress();
    let sink = a.out.as_ref().map(|d| RunFiles(d.as_path()));
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (f, fold) in folds.iter().enumerate() {
            RunFiles(dir).qrels(
                f,
                &fold.train,
                &reco_eval::evaluator::relevance(fold, cfg.relevance_threshold),
            )?;
        }
    }
    let report = evaluate(
        &name,
        &protocol,
        &folds,
        &cands,
        &cfg,
        sink.as_ref().map(|s| s as &dyn reco_eval::RunSink),
        &on_progress,
    )?;
    bar.finish_and_clear();
    if let Some(dir) = &a.out {
        write_reports(&report, dir)?;
    }
    if a.json {
        println!("{}", report::to_json(&report));
    } else {
        println!(
            "{} · {} · {} fold(s) · {} (fold, user) pairs evaluated",
            report.dataset, report.protocol, report.folds, report.users_evaluated
        );
        print!("{}", report::to_markdown(&report));
        if let Some(dir) = &a.out {
            println!(
                "wrote {}/results.{{json,csv,md}}, runs/ and qrels",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The (train, test) files of a split directory: `train.csv`/`test.csv`, or `fold-N/` in order.
fn split_pairs(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let pair = |d: &Path| (d.join("train.csv"), d.join("test.csv"));
    if dir.join("train.csv").exists() {
        return Ok(vec![pair(dir)]);
    }
    let mut folds: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix("fold-")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    folds.sort();
    if folds.is_empty() {
        bail!(
            "{} holds neither train.csv/test.csv nor fold-N directories",
            dir.display()
        );
    }
    Ok(folds.iter().map(|(_, p)| pair(p)).collect())
}

fn write_reports(r: &Report, dir: &Path) -> Result<()> {
    std::fs::write(dir.join("results.json"), report::to_json(r))?;
    std::fs::write(dir.join("results.csv"), report::to_csv(r))?;
    std::fs::write(dir.join("results.md"), report::to_markdown(r))?;
    Ok(())
}
