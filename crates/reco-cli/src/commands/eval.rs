//! `reco eval`: models × folds under a protocol or on ready-made files, with intervals,
//! significance tests, reports and run files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use reco_core::model::Progress;
use reco_core::split::{self, Fold, Protocol};
use reco_eval::{evaluate, report, Candidate, EvalConfig, Report, RunFiles};

use crate::models::{self, Named};
use crate::progress;
use crate::source::DataArgs;

/// Options of `reco eval`.
#[derive(clap::Args, Debug)]
pub(crate) struct EvalArgs {
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
    relevance_threshold: Option<f32>,
    /// The old name of --relevance-threshold, accepted with a warning.
    #[arg(long, hide = true, conflicts_with = "relevance_threshold")]
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
    /// User fields whose groups get their own accuracy figures (categorical fields by value,
    /// numeric ones by quartile band), e.g. `--groups gender,age`.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// Also write the HTML report (inline SVG: comparison table with intervals and
    /// significance marks, curves over k, accuracy against coverage and novelty) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// The evaluator's view of named specifications: a name, the spec as JSON, a fit closure.
pub(crate) fn candidates(list: &[Named]) -> Vec<Candidate<'static>> {
    list.iter()
        .map(|n| Candidate {
            name: n.name.clone(),
            spec: n.spec.to_value().unwrap_or_default(),
            fit: n.spec.clone().into_fit_fn(),
        })
        .collect()
}

/// One progress bar for an evaluation, and the callback that moves it.
pub(crate) fn eval_progress() -> (indicatif::ProgressBar, impl Fn(&str, Progress<'_>) + Sync) {
    let bar = progress::bar(0, "");
    let b = bar.clone();
    (bar, move |stage: &str, p: Progress<'_>| {
        b.set_message(format!("{stage} {}", p.stage));
        b.set_length(p.total);
        b.set_position(p.done);
    })
}

/// Evaluates the models of `a`, and `extra` beside them.
pub(crate) fn eval(a: EvalArgs, extra: Vec<Named>) -> Result<()> {
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
    // What a model cannot do is known from its spec: refuse before any data are read.
    if a.ratings_only {
        if let Some(m) = list.iter().find(|m| !m.spec.capabilities().rates) {
            return Err(reco_core::Error::param(
                "ratings-only",
                format!(
                    "model {:?} ({}) does not predict ratings; drop it or --ratings-only",
                    m.name,
                    m.spec.kind()
                ),
            )
            .into());
        }
    }
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
                        fold.candidates = Some(super::data::read_candidates(&fold.train, &cands)?);
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
    if let (Some(t), Some(fold)) = (a.relevance_threshold, folds.first()) {
        if fold.train.feedback == reco_core::Feedback::Implicit {
            bail!(reco_core::Error::param(
                "relevance-threshold",
                format!(
                    "the data are implicit feedback (every value counts as a positive), so a \
                     threshold of {t} on ratings has nothing to select; drop it"
                )
            ));
        }
    }
    let mut ks = a.k.clone();
    ks.sort_unstable();
    ks.dedup();
    if let (Some(&max), Some(fold)) = (ks.last(), folds.first()) {
        let items = fold.train.n_items();
        if max > items {
            reco_core::warning::warn(format!(
                "--k {max} is more than the {items} items of the data: lists are at most {items} \
                 long, so metrics at that cutoff equal those at {items}"
            ));
        }
    }
    let cfg = EvalConfig {
        ks,
        seed: a.seed,
        relevance_threshold: a.relevance_threshold.or_else(|| {
            a.relevant_threshold.inspect(|_| {
                reco_core::warning::warn(
                    "--relevant-threshold is now called --relevance-threshold; the old name will \
                     be refused in the next release",
                )
            })
        }),
        baseline: a.baseline.clone(),
        auc: !a.no_auc,
        ranking: !a.ratings_only,
        groups: a.groups.clone(),
    };
    let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    cfg.check(&names)?;
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
    if let Some(file) = &a.report {
        super::write_file(file, reco_eval::html::eval_report(&report).as_bytes())?;
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
        bail!(reco_core::Error::Format {
            path: dir.to_path_buf(),
            message: "holds neither train.csv/test.csv nor fold-N directories; write splits \
                      with `reco data split`"
                .into(),
        });
    }
    Ok(folds.iter().map(|(_, p)| pair(p)).collect())
}

fn write_reports(r: &Report, dir: &Path) -> Result<()> {
    std::fs::write(dir.join("results.json"), report::to_json(r))?;
    std::fs::write(dir.join("results.csv"), report::to_csv(r))?;
    std::fs::write(dir.join("results.md"), report::to_markdown(r))?;
    Ok(())
}
