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

#[test]
fn baseline_behaves_with_als_and_sgd() {
    use reco_models::bias::{BaselineParams, BiasMethod};
    check_behaviour(&ModelSpec::Baseline(BaselineParams::default()));
    check_behaviour(&ModelSpec::Baseline(BaselineParams {
        method: BiasMethod::Sgd,
        ..Default::default()
    }));
}

#[test]
fn knn_behaves_with_every_similarity() {
    use reco_models::knn::{KnnParams, Prediction, Similarity};
    for similarity in [
        Similarity::Cosine,
        Similarity::AdjustedCosine,
        Similarity::Pearson,
        Similarity::PearsonBaseline,
        Similarity::Msd,
        Similarity::Jaccard,
        Similarity::VectorCosine,
        Similarity::Tfidf,
        Similarity::Bm25,
    ] {
        // Rating models keep every neighbour (exact), ranking models 50 per item (implicit's K).
        let p = KnnParams {
            similarity,
            max_neighbours: if similarity.co_rated() { 0 } else { 50 },
            ..Default::default()
        };
        check_behaviour(&ModelSpec::ItemKnn(p.clone()));
        check_behaviour(&ModelSpec::UserKnn(KnnParams {
            prediction: Prediction::WithMeans,
            ..p
        }));
    }
}

#[test]
fn slope_one_behaves() {
    use reco_models::slope_one::SlopeOneParams;
    check_behaviour(&ModelSpec::SlopeOne(SlopeOneParams::default()));
    check_behaviour(&ModelSpec::SlopeOne(SlopeOneParams { weighted: false }));
}

#[test]
fn content_behaves() {
    use reco_models::content::{ContentParams, ProfileWeighting};
    check_behaviour(&ModelSpec::Content(ContentParams::default()));
    check_behaviour(&ModelSpec::Content(ContentParams {
        weighting: ProfileWeighting::Centered,
        numeric_weight: 0.5,
        ..Default::default()
    }));
}

#[test]
fn covisit_behaves() {
    use reco_models::covisit::{CovisWeighting, CovisitParams, SessionSource};
    for weighting in [CovisWeighting::Count, CovisWeighting::Cosine] {
        check_behaviour(&ModelSpec::Covisit(CovisitParams {
            source: SessionSource::Histories,
            gap_seconds: 86_400,
            weighting,
            last_n: 5,
            ..Default::default()
        }));
    }
}

#[test]
fn ease_and_rp3beta_behave() {
    use reco_models::ease::EaseParams;
    use reco_models::rp3::Rp3Params;
    check_behaviour(&ModelSpec::Ease(EaseParams {
        lambda: 50.0,
        ..Default::default()
    }));
    check_behaviour(&ModelSpec::Rp3beta(Rp3Params::default()));
}

#[test]
fn matrix_factorisation_behaves() {
    use reco_models::mf::als::AlsParams;
    use reco_models::mf::bpr::BprParams;
    use reco_models::mf::ials::{IalsParams, Solver};
    use reco_models::mf::nmf::NmfParams;
    use reco_models::mf::svd::SvdParams;
    check_behaviour(&ModelSpec::Svd(SvdParams {
        factors: 16,
        ..Default::default()
    }));
    check_behaviour(&ModelSpec::Svd(SvdParams {
        factors: 16,
        shuffle: true,
        ..Default::default()
    }));
    check_behaviour(&ModelSpec::Nmf(NmfParams::default()));
    check_behaviour(&ModelSpec::Svdpp(
        reco_models::mf::svdpp::SvdppParams::default(),
    ));
    check_behaviour(&ModelSpec::Als(AlsParams {
        factors: 8,
        iterations: 5,
        ..Default::default()
    }));
    for solver in [Solver::Cg, Solver::Cholesky] {
        check_behaviour(&ModelSpec::Ials(IalsParams {
            factors: 16,
            iterations: 5,
            alpha: 10.0,
            solver,
            ..Default::default()
        }));
    }
    check_behaviour(&ModelSpec::Bpr(BprParams {
        factors: 16,
        epochs: 20,
        lr: 0.05,
        ..Default::default()
    }));
}
