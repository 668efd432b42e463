//! How trials are chosen: a grid, uniform random draws, or TPE (tree-structured Parzen
//! estimators, as in Optuna: one estimator per parameter, fitted to the best and the other
//! trials so far). Every choice is a function of the seed, the trial's index and the trials
//! that finished before its batch began, so a search gives the same trials on every run and
//! when resumed.

use rand::{RngExt, SeedableRng};
use reco_core::{Error, Result};

use crate::space::Space;

/// A search strategy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Every combination of `steps` levels per parameter (all of a choice's values; every
    /// integer of a short range); with fewer trials than points, a seeded sample of them.
    Grid {
        /// Levels of each numeric range.
        steps: usize,
    },
    /// Independent uniform draws (log-uniform for log ranges).
    Random,
    /// Random for the first `startup` trials, then TPE.
    Tpe {
        /// Random trials before the model takes over.
        startup: usize,
    },
}

impl std::str::FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Strategy> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let num = |default: usize, min: usize| -> Result<usize> {
            if arg.is_empty() {
                return Ok(default);
            }
            arg.parse::<usize>()
                .ok()
                .filter(|&n| n >= min && n <= 1 << 20)
                .ok_or_else(|| {
                    Error::param(
                        "strategy",
                        format!("{s:?}: {name}:N takes an integer N >= {min}"),
                    )
                })
        };
        match name {
            "grid" => Ok(Strategy::Grid { steps: num(4, 2)? }),
            "random" if arg.is_empty() => Ok(Strategy::Random),
            "tpe" => Ok(Strategy::Tpe {
                startup: num(10, 1)?,
            }),
            _ => Err(Error::param(
                "strategy",
                format!("{s:?} is not one of grid[:STEPS], random, tpe[:STARTUP]"),
            )),
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::Grid { steps } => write!(f, "grid:{steps}"),
            Strategy::Random => f.write_str("random"),
            Strategy::Tpe { startup } => write!(f, "tpe:{startup}"),
        }
    }
}

/// A finished trial as the sampler sees it: internal coordinates and the loss (lower is
/// better; failed trials are left out).
pub type Observation = (Vec<f64>, f64);

/// Largest grid enumerated.
const MAX_GRID: u128 = 1 << 24;

/// Proposes trials of one search.
pub struct Proposer<'a> {
    space: &'a Space,
    strategy: Strategy,
    seed: u64,
    grid: Vec<Vec<f64>>,
    order: Vec<u64>,
}

impl<'a> Proposer<'a> {
    /// A proposer of up to `trials` trials.
    pub fn new(space: &'a Space, strategy: Strategy, seed: u64, trials: usize) -> Result<Self> {
        let mut p = Proposer {
            space,
            strategy,
            seed,
            grid: Vec::new(),
            order: Vec::new(),
        };
        if let Strategy::Grid { steps } = strategy {
            p.grid = space.params.iter().map(|q| q.dist.levels(steps)).collect();
            let total = p
                .grid
                .iter()
                .try_fold(1u128, |n, l| n.checked_mul(l.len() as u128))
                .filter(|&n| n <= MAX_GRID)
                .ok_or_else(|| {
                    Error::param(
                        "strategy",
                        format!("the grid has more than {MAX_GRID} points; lower its steps or use random or tpe"),
                    )
                })? as u64;
            p.order = (0..total).collect();
            if (trials as u64) < total {
                // Fewer trials than points: a seeded sample, not the grid's first corner.
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                for i in (1..p.order.len()).rev() {
                    let j = rng.random_range(0..=i);
                    p.order.swap(i, j);
                }
                p.order.truncate(trials);
            }
        }
        Ok(p)
    }

    /// Trials this proposer can give (the grid's size for a grid; unbounded otherwise).
    pub fn capacity(&self) -> Option<usize> {
        matches!(self.strategy, Strategy::Grid { .. }).then_some(self.order.len())
    }

    fn rng(&self, index: usize, stream: u64) -> rand::rngs::StdRng {
        // Distinct seeds per (search, trial, parameter) without correlation between them.
        let mut h = self.seed ^ 0x9E37_79B9_7F4A_7C15;
        for v in [index as u64, stream] {
            h = (h ^ v).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            h ^= h >> 31;
        }
        rand::rngs::StdRng::seed_from_u64(h)
    }

    fn random(&self, index: usize) -> Vec<f64> {
        let mut rng = self.rng(index, 0);
        self.space
            .params
            .iter()
            .map(|p| {
                let (a, b) = p.dist.internal();
                if b > a {
                    rng.random_range(a..b)
                } else {
                    a
                }
            })
            .collect()
    }

    /// The internal coordinates of trial `index`, given the trials finished before its batch.
    pub fn propose(&self, index: usize, history: &[Observation]) -> Result<Vec<f64>> {
        match self.strategy {
            Strategy::Grid { .. } => {
                let mut k = *self.order.get(index).ok_or_else(|| {
                    Error::param(
                        "trials",
                        format!("the grid has only {} points", self.order.len()),
                    )
                })?;
                let mut x = Vec::with_capacity(self.grid.len());
                for levels in &self.grid {
                    let n = levels.len() as u64;
                    x.push(levels[(k % n) as usize]);
                    k /= n;
                }
                Ok(x)
            }
            Strategy::Random => Ok(self.random(index)),
            Strategy::Tpe { startup } if history.len() < startup => Ok(self.random(index)),
            Strategy::Tpe { .. } => self
                .space
                .params
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    let (a, b) = p.dist.internal();
                    if b <= a {
                        return Ok(a);
                    }
                    let err = |e: String| Error::param("strategy", format!("tpe: {}: {e}", p.path));
                    let mut rng = self.rng(index, j as u64 + 1);
                    if p.dist.categorical() {
                        let range =
                            tpe::categorical_range(b as usize).map_err(|e| err(e.to_string()))?;
                        let mut opt = tpe::TpeOptimizer::new(tpe::histogram_estimator(), range);
                        for (x, loss) in history {
                            opt.tell(x[j].floor(), *loss)
                                .map_err(|e| err(e.to_string()))?;
                        }
                        // The histogram gives a category index; the middle of its cell maps back.
                        Ok(opt.ask(&mut rng).map_err(|e| err(e.to_string()))?.floor() + 0.5)
                    } else {
                        let range = tpe::range(a, b).map_err(|e| err(e.to_string()))?;
                        let mut opt = tpe::TpeOptimizer::new(tpe::parzen_estimator(), range);
                        for (x, loss) in history {
                            opt.tell(x[j].clamp(a, b - (b - a) * 1e-12), *loss)
                                .map_err(|e| err(e.to_string()))?;
                        }
                        opt.ask(&mut rng).map_err(|e| err(e.to_string()))
                    }
                })
                .collect(),
        }
    }
}
