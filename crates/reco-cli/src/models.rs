//! Model lists from the command line (`--model popularity`, `--model '{"model": ...}'`) and from
//! model files (TOML with `[[model]]` tables, each with an optional `name`).

use std::path::Path;

use anyhow::{Context, Result};

use reco_core::Error;
use reco_models::ModelSpec;

/// A named specification.
#[derive(Clone, Debug)]
pub struct Named {
    /// Name in reports.
    pub name: String,
    /// The specification.
    pub spec: ModelSpec,
}

/// Parses one `--model` value: a bare model name (defaults), a JSON object, or the path of a
/// model file ending in `.toml` or `.json` (what `reco tune` writes as `best.toml`; a pipeline
/// file such as `examples/pipeline.toml`).
pub fn parse_one(s: &str) -> Result<Named> {
    let path = Path::new(s);
    let ext = path.extension().and_then(|e| e.to_str());
    if matches!(ext, Some("toml" | "json")) && !s.trim_start().starts_with('{') {
        let text = reco_core::input::read_text(path)?;
        let spec = reco_pipeline::spec_from_file(&text, ext == Some("toml"))
            .with_context(|| format!("model file {}", path.display()))?;
        return Ok(Named {
            name: spec.kind().to_string(),
            spec,
        });
    }
    let value: serde_json::Value = if s.trim_start().starts_with('{') {
        serde_json::from_str(s)
            .map_err(|e| Error::param("model", format!("{s:?} is not valid JSON: {e}")))?
    } else {
        serde_json::json!({ "model": s })
    };
    from_value(value)
}

fn from_value(mut value: serde_json::Value) -> Result<Named> {
    let name = value
        .as_object_mut()
        .and_then(|o| o.remove("name"))
        .and_then(|n| n.as_str().map(str::to_string));
    let spec = ModelSpec::from_value(value.clone())
        .with_context(|| format!("invalid model specification {value}"))?;
    Ok(Named {
        name: name.unwrap_or_else(|| spec.kind().to_string()),
        spec,
    })
}

/// Reads a model file.
pub fn read_file(path: &Path) -> Result<Vec<Named>> {
    let text = reco_core::input::read_text(path)?;
    let bad = |m: String| Error::param("models", format!("{}: {m}", path.display()));
    let doc: toml::Value =
        toml::from_str(&text).map_err(|e| bad(format!("not valid TOML: {e}")))?;
    let Some(list) = doc.get("model").and_then(|m| m.as_array()) else {
        return Err(bad("expected [[model]] tables".into()).into());
    };
    let models = list
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let json = reco_models::strict_value(m.clone())
                .map_err(|e| bad(format!("model #{}: {e}", k + 1)))?;
            from_value(json).with_context(|| format!("{}: model #{}", path.display(), k + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    unique(models)
}

/// Refuses duplicate names, which would make reports ambiguous.
pub fn unique(models: Vec<Named>) -> Result<Vec<Named>> {
    let mut seen = std::collections::HashSet::new();
    for m in &models {
        if !seen.insert(m.name.clone()) {
            return Err(Error::param(
                "name",
                format!(
                    "two models are named {:?}; give them distinct `name`s",
                    m.name
                ),
            )
            .into());
        }
        if m.name.contains(['/', ' ', '\t']) {
            return Err(Error::param(
                "name",
                format!(
                    "model name {:?} must not contain '/', spaces or tabs",
                    m.name
                ),
            )
            .into());
        }
    }
    Ok(models)
}
