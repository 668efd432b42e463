//! [`Explain`] for the families whose scores decompose exactly: item-kNN (the history items'
//! similarity terms), user-kNN (the neighbours who have the item), implicit ALS (implicit's
//! per-item decomposition), content (the profile's shared features), co-visitation (the
//! context item that led to it) and popularity. Other families are explained from their
//! capabilities by `reco_pipeline::explain`.

use reco_core::explain::{Explain, Reason};
use reco_core::model::Query;
use reco_core::Result;

use crate::baseline::Popularity;
use crate::content::Content;
use crate::covisit::Covisit;
use crate::knn::{Knn, Side};
use crate::mf::ials::Ials;

impl Explain for Knn {
    fn explain(&self, q: &Query<'_>, item: u32, k: usize) -> Result<Vec<Reason>> {
        Ok(match self.side {
            Side::Item => Knn::explain(self, q.history, item, k)
                .into_iter()
                .map(|(item, weight)| Reason::Item { item, weight })
                .collect(),
            Side::User => {
                let (users, weight) = self.neighbours_with(q, item, k);
                if users.is_empty() {
                    Vec::new()
                } else {
                    vec![Reason::Users { users, weight }]
                }
            }
        })
    }
}

impl Explain for Ials {
    fn explain(&self, q: &Query<'_>, item: u32, k: usize) -> Result<Vec<Reason>> {
        Ok(Ials::explain(self, q.history, item, k)?
            .into_iter()
            .map(|(item, weight)| Reason::Item { item, weight })
            .collect())
    }
}

impl Explain for Content {
    fn explain(&self, q: &Query<'_>, item: u32, k: usize) -> Result<Vec<Reason>> {
        Ok(Content::explain(self, q.history, item, k)
            .into_iter()
            .map(|(name, weight)| {
                let (field, value) = name.split_once('=').unwrap_or(("text", name.as_str()));
                Reason::Feature {
                    field: field.to_string(),
                    value: value.to_string(),
                    weight,
                }
            })
            .collect())
    }
}

impl Explain for Covisit {
    fn explain(&self, q: &Query<'_>, item: u32, _k: usize) -> Result<Vec<Reason>> {
        Ok(Covisit::explain(self, q, item)
            .map(|(item, weight)| Reason::Item { item, weight })
            .into_iter()
            .collect())
    }
}

impl Explain for Popularity {
    fn explain(&self, _q: &Query<'_>, item: u32, _k: usize) -> Result<Vec<Reason>> {
        Ok(self
            .scores()
            .get(item as usize)
            .map(|&weight| Reason::Signal {
                name: "popularity".into(),
                weight,
            })
            .into_iter()
            .collect())
    }
}
