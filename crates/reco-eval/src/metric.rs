//! The names of what the evaluator measures: a typed [`Metric`] (a metric and, for list
//! metrics, its cutoff), written as text (`ndcg@10`, `auc`) only at the edges: reports, JSON
//! keys and command-line arguments.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::metrics::AtK;

/// Per-user accuracy of a top-k list (averaged over users, with intervals and paired tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Accuracy {
    /// hits / k.
    Precision,
    /// hits / |R|.
    Recall,
    /// Harmonic mean of precision and recall.
    F1,
    /// 1 when at least one hit.
    HitRate,
    /// 1 / rank of the first hit.
    Mrr,
    /// Average precision.
    Map,
    /// Binary-gain NDCG.
    Ndcg,
    /// Linear-gain NDCG.
    NdcgGraded,
}

impl Accuracy {
    /// Every accuracy metric, in the order of [`AtK::NAMES`].
    pub const ALL: [Accuracy; 8] = [
        Accuracy::Precision,
        Accuracy::Recall,
        Accuracy::F1,
        Accuracy::HitRate,
        Accuracy::Mrr,
        Accuracy::Map,
        Accuracy::Ndcg,
        Accuracy::NdcgGraded,
    ];

    /// The written name (`ndcg`).
    pub fn name(self) -> &'static str {
        AtK::NAMES[self as usize]
    }

    /// This metric's value in `m`.
    pub fn of(self, m: &AtK) -> f64 {
        m.values()[self as usize]
    }
}

/// A property of all the lists at k together (one value per fold).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Beyond {
    /// Share of the catalogue shown to someone.
    Coverage,
    /// Gini index of exposure.
    Gini,
    /// 1 − mean overlap between users' lists.
    Personalization,
    /// Mean self-information of shown items.
    Novelty,
    /// Mean training popularity of shown items.
    AvgPopularity,
    /// Mean intra-list category diversity.
    Diversity,
}

impl Beyond {
    /// Every beyond-accuracy metric.
    pub const ALL: [Beyond; 6] = [
        Beyond::Coverage,
        Beyond::Gini,
        Beyond::Personalization,
        Beyond::Novelty,
        Beyond::AvgPopularity,
        Beyond::Diversity,
    ];

    /// The written name (`coverage`).
    pub fn name(self) -> &'static str {
        match self {
            Beyond::Coverage => "coverage",
            Beyond::Gini => "gini",
            Beyond::Personalization => "personalization",
            Beyond::Novelty => "novelty",
            Beyond::AvgPopularity => "avg_popularity",
            Beyond::Diversity => "diversity",
        }
    }
}

/// One measured quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// A per-user accuracy metric at a cutoff.
    Accuracy(Accuracy, usize),
    /// A beyond-accuracy metric at a cutoff.
    Beyond(Beyond, usize),
    /// Area under the ROC curve of each user's full score vector.
    Auc,
    /// Root mean squared error of predicted ratings.
    Rmse,
    /// Mean absolute error of predicted ratings.
    Mae,
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Accuracy(m, k) => write!(f, "{}@{k}", m.name()),
            Metric::Beyond(m, k) => write!(f, "{}@{k}", m.name()),
            Metric::Auc => f.write_str("auc"),
            Metric::Rmse => f.write_str("rmse"),
            Metric::Mae => f.write_str("mae"),
        }
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Metric, String> {
        match s {
            "auc" => return Ok(Metric::Auc),
            "rmse" => return Ok(Metric::Rmse),
            "mae" => return Ok(Metric::Mae),
            _ => {}
        }
        let unknown = || format!("unknown metric {s:?} (e.g. ndcg@10, coverage@10, auc, rmse)");
        let (name, k) = s.split_once('@').ok_or_else(unknown)?;
        let k: usize = k
            .parse()
            .ok()
            .filter(|&k| k > 0)
            .ok_or_else(|| format!("metric {s:?}: the cutoff after @ is an integer >= 1"))?;
        if let Some(a) = Accuracy::ALL.iter().find(|a| a.name() == name) {
            return Ok(Metric::Accuracy(*a, k));
        }
        if let Some(b) = Beyond::ALL.iter().find(|b| b.name() == name) {
            return Ok(Metric::Beyond(*b, k));
        }
        Err(unknown())
    }
}

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_reads_back_what_it_writes() {
        let mut all = vec![Metric::Auc, Metric::Rmse, Metric::Mae];
        for k in [1, 10, 100] {
            all.extend(Accuracy::ALL.map(|a| Metric::Accuracy(a, k)));
            all.extend(Beyond::ALL.map(|b| Metric::Beyond(b, k)));
        }
        for m in all {
            assert_eq!(m.to_string().parse::<Metric>(), Ok(m));
        }
        assert_eq!(Metric::Accuracy(Accuracy::Ndcg, 10).to_string(), "ndcg@10");
        assert_eq!(
            Metric::Beyond(Beyond::AvgPopularity, 5).to_string(),
            "avg_popularity@5"
        );
        for bad in ["ndcg", "ndcg@0", "ndcg@x", "colour@3", ""] {
            assert!(bad.parse::<Metric>().is_err(), "{bad}");
        }
    }

    #[test]
    fn accuracy_metrics_pick_their_own_field() {
        let m = AtK {
            precision: 1.0,
            recall: 2.0,
            f1: 3.0,
            hit_rate: 4.0,
            mrr: 5.0,
            map: 6.0,
            ndcg: 7.0,
            ndcg_graded: 8.0,
        };
        let got: Vec<f64> = Accuracy::ALL.iter().map(|a| a.of(&m)).collect();
        assert_eq!(got, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(Accuracy::HitRate.name(), "hit_rate");
    }
}
