//! `reco recommend`, `reco similar` and `reco export-vectors`: answers from a saved model, in
//! external ids.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use reco_core::model::{Filter, Query};

/// Options of `reco recommend`.
#[derive(clap::Args, Debug)]
pub(crate) struct RecommendArgs {
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
}

/// Options of `reco similar`.
#[derive(clap::Args, Debug)]
pub(crate) struct SimilarArgs {
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
}

/// Options of `reco export-vectors`.
#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// Artifact directory written by `reco train`.
    #[arg(long)]
    model: PathBuf,
    /// Directory to write.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `reco recommend`.
pub(crate) fn run_recommend(a: RecommendArgs) -> Result<()> {
    recommend(&a.model, &a.user, a.k, a.include_seen, a.explain, a.json)
}

/// Runs `reco similar`.
pub(crate) fn run_similar(a: SimilarArgs) -> Result<()> {
    similar(&a.model, &a.item, a.k, a.json)
}

/// Runs `reco export-vectors`.
pub(crate) fn run_export(a: ExportArgs) -> Result<()> {
    export_vectors(&a.model, &a.out)
}

/// A list of no items is a mistake in the request, not an empty answer.
fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        anyhow::bail!(reco_core::Error::param("k", "must be at least 1"));
    }
    Ok(())
}

/// Says when a list cannot be as long as asked.
fn warn_k_above_catalogue(k: usize, items: usize) {
    if k > items {
        reco_core::warning::warn(format!(
            "-k {k} is more than the {items} items the model knows; the list has at most {items}"
        ));
    }
}

fn similar(dir: &Path, item: &str, k: usize, json: bool) -> Result<()> {
    check_k(k)?;
    let m = reco_models::load(dir)?;
    let i = m.items.get(item).ok_or_else(|| {
        reco_core::Error::param(
            "item",
            format!("{item:?} is not in the model's catalogue (see the model's items.bin ids)"),
        )
    })?;
    let kind = m.model.spec().kind();
    let sim = m.model.as_similar_items().ok_or_else(|| {
        reco_core::Error::Unsupported(format!("a {kind} model does not find similar items"))
    })?;
    let rows = scored_rows(&m, &sim.similar_items(i, k)?);
    print_rows(
        &serde_json::json!({ "item": item, "similar": rows }),
        &rows,
        json,
    )
}

/// Ranked items with their external ids, titles and categories.
fn scored_rows(
    m: &reco_models::LoadedModel,
    list: &[reco_core::topk::Scored],
) -> Vec<serde_json::Value> {
    let bad = list.iter().filter(|s| !s.score.is_finite()).count();
    if bad > 0 {
        reco_core::warning::warn(format!(
            "the model gave {bad} of these items a score that is not a finite number (shown as \
             NaN); it has probably diverged: retrain it with a lower learning_rate"
        ));
    }
    list.iter()
        .enumerate()
        .map(|(r, s)| {
            let (title, cat) = m.labels.as_ref().map_or((String::new(), String::new()), |c| (c.titles[s.item as usize].clone(), c.categories[s.item as usize].clone()));
            serde_json::json!({ "rank": r + 1, "item": m.items.id(s.item), "score": s.score, "title": title, "category": cat })
        })
        .collect()
}

fn print_rows(doc: &serde_json::Value, rows: &[serde_json::Value], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(doc)?);
    } else {
        println!(
            "{:>4}  {:<10} {:>10}  {:<40} category",
            "rank", "item", "score", "title"
        );
        for r in rows {
            // JSON has no NaN: a non-finite score is null there.
            let score = r["score"]
                .as_f64()
                .map_or_else(|| "NaN".to_string(), |v| format!("{v:.4}"));
            println!(
                "{:>4}  {:<10} {:>10}  {:<40} {}",
                r["rank"],
                r["item"].as_str().unwrap_or(""),
                score,
                r["title"].as_str().unwrap_or(""),
                r["category"].as_str().unwrap_or("")
            );
            for why in r["why"].as_array().into_iter().flatten() {
                println!("{:>18}{}", "", why.as_str().unwrap_or(""));
            }
        }
    }
    Ok(())
}

fn recommend(
    dir: &Path,
    user: &str,
    k: usize,
    include_seen: bool,
    explain: bool,
    json: bool,
) -> Result<()> {
    check_k(k)?;
    let m = reco_models::load(dir)?;
    warn_k_above_catalogue(k, m.items.len());
    let u = m.users.get(user);
    let seen: &[u32] = match (u, include_seen) {
        (Some(u), false) => m.seen(u),
        _ => &[],
    };
    if u.is_none() {
        eprintln!(
            "note: user {user:?} is not in the training data; recommending for an anonymous user"
        );
    }
    let query = match u {
        Some(u) => Query::user(u),
        None => Query::history(&[]),
    };
    let recs = m.model.recommend(
        &query,
        k,
        &Filter {
            exclude: seen,
            allow: None,
        },
    )?;
    let mut rows = scored_rows(&m, &recs);
    if explain {
        // The artifact keeps which items a user had, not their values: each counts once.
        let history: Vec<(u32, f32)> = u.map_or(Vec::new(), |u| {
            m.seen(u).iter().map(|&i| (i, 1.0)).collect()
        });
        let labels = |i: u32| -> Vec<String> {
            m.labels.as_ref().map_or(Vec::new(), |c| {
                c.categories[i as usize]
                    .split('|')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
        };
        let q = reco_core::model::Query {
            user: u,
            history: &history,
        };
        for (row, s) in rows.iter_mut().zip(&recs) {
            let e =
                reco_pipeline::explain_with(m.model.as_ref(), &q, s.item, 3, "category", &labels)?;
            let why: Vec<String> = e.reasons.iter().map(|r| describe(&m, r)).collect();
            row["why"] = serde_json::json!(why);
            row["reasons"] = serde_json::to_value(&e.reasons)?;
        }
    }
    print_rows(
        &serde_json::json!({ "user": user, "known_user": u.is_some(), "recommendations": rows }),
        &rows,
        json,
    )
}

/// A reason in words, with external ids and titles.
fn describe(m: &reco_models::LoadedModel, r: &reco_core::explain::Reason) -> String {
    use reco_core::explain::Reason;
    let item = |i: u32| {
        let t = m
            .labels
            .as_ref()
            .map_or("", |c| c.titles[i as usize].as_str());
        if t.is_empty() {
            m.items.id(i).to_string()
        } else {
            t.to_string()
        }
    };
    match r {
        Reason::Item { item: i, weight } => format!("because you liked {} ({weight:.3})", item(*i)),
        Reason::Users { users, weight } => format!(
            "{} similar users have it ({weight:.3}): {}",
            users.len(),
            users
                .iter()
                .take(3)
                .map(|&u| m.users.id(u))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Reason::Feature {
            field,
            value,
            weight,
        } => format!("{field} {value} ({weight:.2} of your history)"),
        Reason::Source { source, rank } => format!("proposed by {source} (rank {})", rank + 1),
        Reason::Signal { name, weight } => format!("{name} {weight:+.3}"),
        Reason::Popular { count } => format!("popular ({count} interactions)"),
    }
}

/// `reco export-vectors`: every user and item vector of an embedding model, for ANN indexes and
/// for peers that score from vectors.
fn export_vectors(dir: &Path, out: &Path) -> Result<()> {
    let m = reco_models::load(dir)?;
    let kind = m.model.spec().kind();
    let emb = m.model.as_embeddings().ok_or_else(|| {
        reco_core::Error::Unsupported(format!(
            "a {kind} model has no user and item vectors; export them from a factor model \
                 or a two-tower model"
        ))
    })?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let nu = write_vectors(&out.join("users.tsv"), &m.users, &|u| emb.user_vector(u))?;
    let ni = write_vectors(&out.join("items.tsv"), &m.items, &|i| emb.item_vector(i))?;
    eprintln!(
        "wrote {nu} user and {ni} item vectors of dimension {} to {}",
        emb.dim(),
        out.display()
    );
    Ok(())
}

/// One line per entity that has a vector: its external id, then the vector, tab-separated.
fn write_vectors<'m>(
    path: &Path,
    ids: &reco_core::IdMap,
    get: &dyn Fn(u32) -> Option<&'m [f32]>,
) -> Result<usize> {
    use std::io::Write;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut n = 0;
    for e in 0..ids.len() as u32 {
        if let Some(v) = get(e) {
            write!(w, "{}", ids.id(e))?;
            for x in v {
                write!(w, "\t{x}")?;
            }
            writeln!(w)?;
            n += 1;
        }
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(n)
}
