//! The behaviour suite fails models that break its rules: each broken kind here differs from
//! popularity in one behaviour, and the suite must name that behaviour.

use reco_core::model::{Filter, FitOptions, Query, Recommender};
use reco_core::topk::Scored;
use reco_core::{Dataset, Result};
use reco_models::baseline::Popularity;
use reco_models::{Capabilities, Kind, Model, ModelSpec, PopularityParams, Shape};
use serde::{Deserialize, Serialize};

/// Which rule the broken model breaks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Flaw {
    ClaimsVectors,
    ReturnsSeenItems,
    NanScores,
    IgnoresAllow,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct BrokenParams {
    flaw: Flaw,
}

struct Broken {
    params: BrokenParams,
    inner: Box<dyn Model>,
}

impl Recommender for Broken {
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        self.inner.score(q, out)?;
        if self.params.flaw == Flaw::NanScores {
            out[3] = f32::NAN;
        }
        Ok(())
    }
    fn recommend(&self, q: &Query<'_>, k: usize, f: &Filter<'_>) -> Result<Vec<Scored>> {
        let f = match self.params.flaw {
            Flaw::ReturnsSeenItems => Filter {
                exclude: &[],
                allow: f.allow,
            },
            Flaw::IgnoresAllow => Filter {
                exclude: f.exclude,
                allow: None,
            },
            _ => *f,
        };
        self.inner.recommend(q, k, &f)
    }
}

impl Model for Broken {
    fn spec(&self) -> ModelSpec {
        ModelSpec::new::<Broken>(self.params.clone())
    }
    fn state(&self) -> Result<Vec<u8>> {
        self.inner.state()
    }
}

fn popularity() -> ModelSpec {
    ModelSpec::new::<Popularity>(PopularityParams::default())
}

impl Kind for Broken {
    const NAME: &'static str = "broken";
    const SUMMARY: &'static str = "Popularity with one flaw.";
    type Params = BrokenParams;
    type Fitted = Broken;
    fn validate(_: &BrokenParams) -> Result<()> {
        Ok(())
    }
    fn capabilities(p: &BrokenParams) -> Capabilities {
        Capabilities {
            ranks: true,
            embeddings: p.flaw == Flaw::ClaimsVectors,
            ..Default::default()
        }
    }
    fn fit(p: &BrokenParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Broken> {
        Ok(Broken {
            params: p.clone(),
            inner: popularity().fit(data, opts)?,
        })
    }
    fn restore(p: &BrokenParams, state: &[u8], shape: &Shape) -> Result<Broken> {
        Ok(Broken {
            params: p.clone(),
            inner: popularity().restore(state, shape)?,
        })
    }
    fn examples() -> Vec<BrokenParams> {
        Vec::new()
    }
}

static BROKEN: &[reco_models::KindEntry] = &[reco_models::KindEntry::of::<Broken>()];

#[test]
fn each_flaw_is_caught_and_named() {
    reco_models::register(BROKEN).unwrap();
    assert!(reco_testing::behaviour(&popularity()).is_ok());
    for (flaw, says) in [
        (Flaw::ClaimsVectors, "embeddings"),
        (Flaw::ReturnsSeenItems, "seen item"),
        (Flaw::NanScores, "NaN"),
        (Flaw::IgnoresAllow, "allow list"),
    ] {
        let e = reco_testing::behaviour(&ModelSpec::new::<Broken>(BrokenParams { flaw }))
            .expect_err("a broken model passed");
        assert!(e.contains(says), "{flaw:?}: {e}");
    }
}
