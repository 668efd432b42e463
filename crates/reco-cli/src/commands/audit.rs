//! `reco audit`: exposure, popularity lift and accuracy by user group, per model.

use anyhow::{Context, Result};

use reco_core::model::FitOptions;
use reco_core::split::{self, Protocol};
use reco_eval::fairness::{audit as run_audit, reweight_by_popularity, Audit};

use crate::models;
use crate::source::DataArgs;

/// Options of `reco audit`.
#[derive(clap::Args, Debug)]
pub(crate) struct AuditArgs {
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
}

/// Runs `reco audit`.
pub(crate) fn run(a: AuditArgs) -> Result<()> {
    audit(
        &a.data,
        &a.protocol,
        &a.model,
        &a.by,
        a.k,
        a.reweight,
        a.seed,
        a.json,
    )
}

/// Fits each model on the protocol's first fold (and, with `reweight`, again on the
/// popularity-re-weighted training data) and prints its audit.
#[allow(clippy::too_many_arguments)]
fn audit(
    data: &DataArgs,
    protocol: &str,
    model: &[String],
    by: &[String],
    k: usize,
    reweight: Option<f64>,
    seed: u64,
    json: bool,
) -> Result<()> {
    let ds = data.load()?;
    let p: Protocol = protocol.parse()?;
    let fold = split::split(&ds, &p, seed)?
        .into_iter()
        .next()
        .context("the protocol made no fold")?;
    let list = if model.is_empty() {
        vec![models::parse_one("popularity")?]
    } else {
        model
            .iter()
            .map(|m| models::parse_one(m))
            .collect::<Result<Vec<_>>>()?
    };
    let list = models::unique(list)?;
    let (bar, on_progress) = super::eval::eval_progress();
    let mut out: Vec<(String, Audit)> = Vec::new();
    for m in &list {
        for alpha in std::iter::once(None).chain(reweight.map(Some)) {
            let name = match alpha {
                Some(a) => format!("{}+reweight{a}", m.name),
                None => m.name.clone(),
            };
            let train = match alpha {
                Some(a) => reweight_by_popularity(&fold.train, a)?,
                None => fold.train.clone(),
            };
            let report = |p: reco_core::model::Progress<'_>| on_progress(&name, p);
            let fitted = m.spec.fit(
                &train,
                &FitOptions {
                    seed,
                    progress: Some(&report),
                    validation: None,
                    checkpoint: None,
                },
            )?;
            out.push((name.clone(), run_audit(fitted.as_ref(), &fold, k, by)?));
        }
    }
    bar.finish_and_clear();
    if json {
        let doc: serde_json::Map<String, serde_json::Value> = out
            .iter()
            .map(|(n, a)| Ok((n.clone(), serde_json::to_value(a)?)))
            .collect::<Result<_>>()?;
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("{} · {} · first fold · k = {k}", ds.name, p);
    println!();
    println!("| model | head slots | mid slots | tail slots | head exposure | tail exposure | popularity lift |");
    println!("|---|---|---|---|---|---|---|");
    for (n, a) in &out {
        let e = &a.exposure;
        println!(
            "| {n} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:+.3} |",
            e[0].slots, e[1].slots, e[2].slots, e[0].exposure, e[2].exposure, a.popularity_lift
        );
    }
    if let Some((_, a)) = out.first() {
        let e = &a.exposure;
        println!(
            "\ngroups by popularity: head {:.1}% of items hold {:.1}% of interactions; tail {:.1}% of items hold {:.1}%",
            100.0 * e[0].items,
            100.0 * e[0].interactions,
            100.0 * e[2].items,
            100.0 * e[2].interactions
        );
    }
    if !by.is_empty() {
        println!("\n| model | field | group | users | ndcg@{k} | recall@{k} |");
        println!("|---|---|---|---|---|---|");
        for (n, a) in &out {
            for g in &a.by_group {
                println!(
                    "| {n} | {} | {} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} |",
                    g.field,
                    g.group,
                    g.ndcg.n,
                    g.ndcg.mean,
                    g.ndcg.ci95,
                    g.recall.mean,
                    g.recall.ci95
                );
            }
        }
    }
    Ok(())
}
