//! Every model in reco-models passes the shared behaviour suite.

use reco_models::testing::check_behaviour;
use reco_models::{ModelSpec, PopularityParams, RandomParams, Weighting};

#[test]
fn random_behaves() {
    check_behaviour(&ModelSpec::Random(RandomParams::default()));
}

#[test]
fn popularity_behaves_with_every_weighting() {
    for weighting in [Weighting::Count, Weighting::Rating, Weighting::Trending] {
        check_behaviour(&ModelSpec::Popularity(PopularityParams {
            weighting,
            half_life_days: 60.0,
        }));
    }
}
