//! Why an item was recommended: one result type every model family answers with.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Query;

/// One reason behind a recommendation; `weight` is the reason's share of the score on the
/// model's own scale (comparable within one explanation, not across models).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// "Because you interacted with `item`."
    Item {
        /// The history item.
        item: u32,
        /// Its contribution.
        weight: f32,
    },
    /// "Users like you interacted with it": the neighbours that did.
    Users {
        /// Neighbouring users (dense indices), most similar first.
        users: Vec<u32>,
        /// Their summed contribution.
        weight: f32,
    },
    /// "It is `value`" (a category, a keyword) and the user's profile likes that.
    Feature {
        /// Field (`genre`, `title`).
        field: String,
        /// Value (`Sci-Fi`).
        value: String,
        /// Its contribution.
        weight: f32,
    },
    /// A candidate source of a pipeline proposed it.
    Source {
        /// Source name (`ann:mf`, `popular`).
        source: String,
        /// The item's rank in that source (0 = first).
        rank: u32,
    },
    /// A named signal of a ranker or blend (`popularity`, `model:ials`).
    Signal {
        /// Signal name.
        name: String,
        /// Its contribution.
        weight: f32,
    },
    /// It is popular.
    Popular {
        /// Training interactions of the item.
        count: u32,
    },
}

/// The reasons for recommending `item`, strongest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The item explained.
    pub item: u32,
    /// Reasons, strongest first.
    pub reasons: Vec<Reason>,
}

/// Models that can say why they score an item as they do.
pub trait Explain: Send + Sync {
    /// Up to `k` reasons for `item`'s score for `query`, strongest first.
    fn explain(&self, query: &Query<'_>, item: u32, k: usize) -> Result<Vec<Reason>>;
}
