//! `reco models`: the model kinds this binary knows, what they can do (with some parameters:
//! a factorization machine rates or ranks depending on its task), and example specifications.

use anyhow::Result;

use reco_models::registry;

/// Options of `reco models`.
#[derive(clap::Args, Debug)]
pub(crate) struct ModelsArgs {
    /// Only this kind, with every example in full.
    kind: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Lists the kinds (or one kind with its examples).
pub(crate) fn run(a: ModelsArgs) -> Result<()> {
    let kinds = match &a.kind {
        Some(k) => vec![registry::lookup(k)?],
        None => registry::kinds(),
    };
    let rows = kinds
        .iter()
        .map(|k| registry::describe(k))
        .collect::<reco_core::Result<Vec<_>>>()?;
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
