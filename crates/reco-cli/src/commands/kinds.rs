//! `reco models`: the model kinds this binary knows, what they can do (with some parameters:
//! a factorization machine rates or ranks depending on its task), and example specifications.

use anyhow::Result;

use reco_models::{registry, Capabilities};

/// Options of `reco models`.
#[derive(clap::Args, Debug)]
pub(crate) struct ModelsArgs {
    /// Only this kind, with every example in full.
    kind: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Capabilities as words.
fn abilities(c: Capabilities) -> Vec<&'static str> {
    [
        (c.ranks, "ranks"),
        (c.rates, "rates"),
        (c.similar_items, "similar-items"),
        (c.embeddings, "embeddings"),
        (c.listwise, "listwise"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// Lists the kinds (or one kind with its examples).
pub(crate) fn run(a: ModelsArgs) -> Result<()> {
    let kinds = match &a.kind {
        Some(k) => vec![registry::lookup(k)?],
        None => registry::kinds(),
    };
    let mut rows = Vec::with_capacity(kinds.len());
    for k in &kinds {
        let examples = k.examples();
        // Some capabilities depend on the parameters (a classification FM ranks, a regression
        // one rates): list what any example can do.
        let any = examples
            .iter()
            .fold(Capabilities::default(), |a, e| a | e.capabilities());
        let caps = abilities(any);
        let examples = examples
            .iter()
            .map(|e| e.to_value())
            .collect::<reco_core::Result<Vec<_>>>()?;
        rows.push(serde_json::json!({
            "kind": k.name,
            "summary": k.summary,
            "capabilities": caps,
            "renamed": k.renamed.iter().map(|(old, new)| serde_json::json!({"old": old, "new": new})).collect::<Vec<_>>(),
            "examples": examples,
        }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in &rows {
        let caps: Vec<&str> = r["capabilities"]
            .as_array()
            .map(|c| c.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        println!(
            "{:<13} {}  [{}]",
            r["kind"].as_str().unwrap_or(""),
            r["summary"].as_str().unwrap_or(""),
            caps.join(", ")
        );
        if a.kind.is_some() {
            for e in r["examples"].as_array().into_iter().flatten() {
                println!("  {e}");
            }
        }
    }
    Ok(())
}
