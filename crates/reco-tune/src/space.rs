//! Search spaces: ranges for parameters of a model specification, addressed by dotted paths
//! (`factors`, `ranker.trees`, `sources.0.factors`), read from the `[space]` table of a tune
//! file.

use std::collections::BTreeMap;

use reco_core::{Error, Result};
use serde_json::Value;

/// The range of one parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// Integers in `lo..=hi`, uniform or log-uniform.
    Int {
        /// Smallest value.
        lo: i64,
        /// Largest value.
        hi: i64,
        /// Log-uniform (needs `lo >= 1`).
        log: bool,
    },
    /// Reals in `[lo, hi]`, uniform or log-uniform.
    Float {
        /// Smallest value.
        lo: f64,
        /// Largest value.
        hi: f64,
        /// Log-uniform (needs `lo > 0`).
        log: bool,
    },
    /// One of a list of values (numbers, strings, booleans, tables).
    Choice(Vec<Value>),
}

impl Dist {
    /// The interval a sampler draws from: the parameter itself, its logarithm, or the index
    /// of a choice (`[0, n)`). Integers get `[lo, hi + 1)` so that `hi` is as likely as `lo`.
    pub fn internal(&self) -> (f64, f64) {
        match *self {
            Dist::Int { lo, hi, log } => {
                let (a, b) = (lo as f64, hi as f64 + 1.0);
                if log {
                    (a.ln(), b.ln())
                } else {
                    (a, b)
                }
            }
            Dist::Float { lo, hi, log } => {
                if log {
                    (lo.ln(), hi.ln())
                } else {
                    (lo, hi)
                }
            }
            Dist::Choice(ref v) => (0.0, v.len() as f64),
        }
    }

    /// The parameter value at internal coordinate `x` (clamped into the range).
    pub fn value(&self, x: f64) -> Value {
        match self {
            Dist::Int { lo, hi, log } => {
                let v = if *log { x.exp() } else { x };
                let v = (v.floor() as i64).clamp(*lo, *hi);
                Value::from(v)
            }
            Dist::Float { lo, hi, log } => {
                let v = if *log { x.exp() } else { x };
                Value::from(v.clamp(*lo, *hi))
            }
            Dist::Choice(v) => {
                let i = (x.floor().max(0.0) as usize).min(v.len() - 1);
                v[i].clone()
            }
        }
    }

    /// Whether the sampler should treat the range as unordered categories.
    pub fn categorical(&self) -> bool {
        matches!(self, Dist::Choice(_))
    }

    /// Internal coordinates of `steps` grid levels: every integer or choice when there are at
    /// most `steps`, else `steps` points spread evenly (on the log scale for log ranges).
    pub fn levels(&self, steps: usize) -> Vec<f64> {
        let steps = steps.max(2);
        match self {
            Dist::Choice(v) => (0..v.len()).map(|i| i as f64 + 0.5).collect(),
            Dist::Int { lo, hi, .. } if hi.abs_diff(*lo) < steps as u64 => (*lo..=*hi)
                .map(|v| v as f64 + 0.5)
                .map(|v| self.to_internal(v))
                .collect(),
            _ => {
                let (a, b) = match *self {
                    Dist::Int { lo, hi, log } if log => ((lo as f64).ln(), (hi as f64).ln()),
                    Dist::Int { lo, hi, .. } => (lo as f64, hi as f64),
                    _ => self.internal(),
                };
                let mut out: Vec<f64> = (0..steps)
                    .map(|s| a + (b - a) * s as f64 / (steps - 1) as f64)
                    .map(|x| match self {
                        // Integers sit in the middle of their unit cell, away from rounding.
                        Dist::Int { log: true, .. } => (x.exp().round() + 0.5).ln(),
                        Dist::Int { .. } => x.round() + 0.5,
                        _ => x,
                    })
                    .collect();
                out.dedup_by(|a, b| self.value(*a) == self.value(*b));
                out
            }
        }
    }

    fn to_internal(&self, v: f64) -> f64 {
        match self {
            Dist::Int { log: true, .. } | Dist::Float { log: true, .. } => v.ln(),
            _ => v,
        }
    }

    fn parse(path: &str, v: &toml::Value) -> Result<Dist> {
        let bad = |m: String| Error::param("space", format!("{path}: {m}"));
        let t = v.as_table().ok_or_else(|| {
            bad("expected a table such as { int = [16, 256] }, { float = [0.001, 1.0], log = true } or { choice = [\"a\", \"b\"] }".into())
        })?;
        for key in t.keys() {
            if !["int", "float", "choice", "log"].contains(&key.as_str()) {
                return Err(bad(format!(
                    "unknown key {key:?} (int, float, choice, log)"
                )));
            }
        }
        let log = match t.get("log") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => return Err(bad("log is true or false".into())),
        };
        let kinds = ["int", "float", "choice"]
            .iter()
            .filter(|k| t.contains_key(**k))
            .count();
        if kinds != 1 {
            return Err(bad("give exactly one of int, float, choice".into()));
        }
        if let Some(c) = t.get("choice") {
            let list = c
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| bad("choice is a non-empty list".into()))?;
            if log {
                return Err(bad("log applies to int and float ranges".into()));
            }
            let values = list
                .iter()
                .map(|x| reco_models::strict_value(x.clone()).map_err(|e| bad(e.to_string())))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Dist::Choice(values));
        }
        let pair = |key: &str| -> Result<(f64, f64)> {
            let a = t[key]
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| bad(format!("{key} is [low, high]")))?;
            let num = |x: &toml::Value| match x {
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::Float(f) if f.is_finite() => Some(*f),
                _ => None,
            };
            match (num(&a[0]), num(&a[1])) {
                (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
                _ => Err(bad(format!("{key} needs two finite numbers, low <= high"))),
            }
        };
        if t.contains_key("int") {
            let a = t["int"].as_array().filter(|a| a.len() == 2);
            let ints = a.and_then(|a| Some((a[0].as_integer()?, a[1].as_integer()?)));
            let (lo, hi) = ints
                .filter(|(lo, hi)| lo <= hi)
                .ok_or_else(|| bad("int is [low, high], two integers, low <= high".into()))?;
            if log && lo < 1 {
                return Err(bad("a log range starts at 1 or more".into()));
            }
            return Ok(Dist::Int { lo, hi, log });
        }
        let (lo, hi) = pair("float")?;
        if log && lo <= 0.0 {
            return Err(bad("a log range starts above 0".into()));
        }
        Ok(Dist::Float { lo, hi, log })
    }
}

/// One searched parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Dotted path into the specification (`factors`, `ranker.trees`, `sources.0.factors`).
    pub path: String,
    /// Its range.
    pub dist: Dist,
}

/// The parameters a search varies, in path order.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    /// Parameters, sorted by path.
    pub params: Vec<Param>,
}

impl Space {
    /// Reads a `[space]` table (`path = { int = [lo, hi] }`, …).
    pub fn from_toml(table: &toml::Table) -> Result<Space> {
        if table.is_empty() {
            return Err(Error::param(
                "space",
                "name at least one parameter to search",
            ));
        }
        let sorted: BTreeMap<&String, &toml::Value> = table.iter().collect();
        let params = sorted
            .into_iter()
            .map(|(path, v)| {
                Ok(Param {
                    path: path.clone(),
                    dist: Dist::parse(path, v)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Space { params })
    }

    /// Reads back what [`Space::to_json`] wrote.
    pub fn from_json(v: &Value) -> Result<Space> {
        let t = toml::Value::try_from(v)
            .ok()
            .and_then(|t| t.as_table().cloned())
            .ok_or_else(|| Error::param("space", "not a table of ranges"))?;
        Space::from_toml(&t)
    }

    /// The space as JSON (for trials files and reports).
    pub fn to_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        for p in &self.params {
            let v = match &p.dist {
                Dist::Int { lo, hi, log } => serde_json::json!({"int": [lo, hi], "log": log}),
                Dist::Float { lo, hi, log } => {
                    serde_json::json!({"float": [lo, hi], "log": log})
                }
                Dist::Choice(c) => serde_json::json!({ "choice": c }),
            };
            o.insert(p.path.clone(), v);
        }
        Value::Object(o)
    }

    /// The parameter values at internal coordinates `x` (one per parameter), by path.
    pub fn values(&self, x: &[f64]) -> BTreeMap<String, Value> {
        self.params
            .iter()
            .zip(x)
            .map(|(p, &x)| (p.path.clone(), p.dist.value(x)))
            .collect()
    }

    /// Checks each parameter alone against `base` before any trial runs: its path must lead
    /// into the specification, and the specification with the parameter at either end of its
    /// range must be valid (a misspelt name or an impossible range fails here, named).
    pub fn check(&self, base: &Value) -> Result<()> {
        for p in &self.params {
            let (a, b) = p.dist.internal();
            for x in [a, (b - a).mul_add(0.999_999, a)] {
                let v = p.dist.value(x);
                let mut probe = base.clone();
                set(&mut probe, &p.path, v.clone())?;
                reco_models::ModelSpec::from_value(probe)
                    .map_err(|e| Error::param("space", format!("{} = {v}: {e}", p.path)))?;
            }
        }
        Ok(())
    }
}

/// Sets the parameter at dotted `path` of a specification to `value`: every segment before
/// the last must exist (object keys, or indices of lists); the last may name a parameter the
/// specification leaves out (an optional one).
pub fn set(spec: &mut Value, path: &str, value: Value) -> Result<()> {
    let segments: Vec<&str> = path.split('.').collect();
    let (last, walk) = segments
        .split_last()
        .expect("split yields one segment at least");
    let missing = |seg: &str| {
        Error::param(
            "space",
            format!("{path}: the specification has no {seg:?} there (`reco models --json` lists each kind's parameters)"),
        )
    };
    let mut at = spec;
    for seg in walk {
        at = match at {
            Value::Object(o) => o.get_mut(*seg).ok_or_else(|| missing(seg))?,
            Value::Array(a) => {
                let i: usize = seg.parse().map_err(|_| missing(seg))?;
                a.get_mut(i).ok_or_else(|| missing(seg))?
            }
            _ => return Err(missing(seg)),
        };
    }
    match at {
        Value::Object(o) => {
            o.insert((*last).to_string(), value);
        }
        Value::Array(a) => {
            let slot = last
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get_mut(i))
                .ok_or_else(|| missing(last))?;
            *slot = value;
        }
        _ => return Err(missing(last)),
    }
    Ok(())
}
