//! Neural recommenders for reco, on candle (CPU):
//!
//! - [`two_tower`]: a user tower and an item tower (feature and id embeddings, a bag of recent
//!   items, an MLP, L2-normalised outputs) trained with sampled-negative BCE, in-batch softmax
//!   with log-Q correction, or MSE on ratings. The `content-dnn` kind is the same network with
//!   the lectures' defaults: features only, MSE on ratings.
//! - [`ncf`]: neural collaborative filtering (GMF + MLP, He et al. 2017).
//!
//! They live in their own crate so the neural-network library stays out of the core build; the
//! binary plugs them in with [`register`], after which `two-tower`, `content-dnn` and
//! `neural-cf` parse, fit, evaluate, save (safetensors) and load like every other model.
//! Given [`reco_core::model::FitOptions::checkpoint`], their fits save a [`checkpoint`] after
//! every epoch and resume from it.

/// `Model` for a network whose specification `spec_expr` builds from `self` and whose state
/// is written by `to_safetensors`.
macro_rules! impl_neural_model {
    ($ty:ty, |$s:ident| $spec:expr) => {
        impl reco_models::Model for $ty {
            fn spec(&self) -> reco_models::ModelSpec {
                let $s = self;
                $spec
            }

            fn state(&self) -> reco_core::Result<Vec<u8>> {
                self.to_safetensors()
            }

            fn state_file(&self) -> &'static str {
                "model.safetensors"
            }
        }
    };
}

mod bags;
pub mod checkpoint;
mod family;
mod linear;
pub mod ncf;
mod nn;
mod optim;
mod train;
pub mod two_tower;

pub use family::{register, ContentDnn, KINDS};
pub use ncf::{NcfParams, NeuralCf};
pub use two_tower::{Loss, TwoTower, TwoTowerParams};

/// Turns a candle error while training or scoring into reco's error type, naming what failed.
pub(crate) fn nn_err(what: &str) -> impl Fn(candle_core::Error) -> reco_core::Error + '_ {
    move |e| reco_core::Error::training("neural network", format!("{what}: {e}"))
}

/// Turns a candle error while reading a saved network into an artifact error.
pub(crate) fn file_err(what: &str) -> impl Fn(candle_core::Error) -> reco_core::Error + '_ {
    move |e| reco_core::Error::artifact("model.safetensors", format!("{what}: {e}"))
}
