//! Report writers: JSON, CSV and a markdown table.

use std::fmt::Write;

use crate::evaluator::Report;
use crate::metric::{Accuracy, Beyond, Metric};

/// The metrics shown in tables at cutoff `k`.
pub fn table_metrics(k: usize) -> [Metric; 6] {
    [
        Metric::Accuracy(Accuracy::Precision, k),
        Metric::Accuracy(Accuracy::Recall, k),
        Metric::Accuracy(Accuracy::Ndcg, k),
        Metric::Accuracy(Accuracy::Map, k),
        Metric::Accuracy(Accuracy::HitRate, k),
        Metric::Beyond(Beyond::Coverage, k),
    ]
}

/// The report as pretty JSON.
pub fn to_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// One CSV row per (model, metric): `model,metric,mean,ci95,n,diff_vs_baseline,p_value`.
pub fn to_csv(r: &Report) -> String {
    let mut s = String::from("model,metric,mean,ci95,n,diff_vs_baseline,p_value\n");
    for m in &r.models {
        for (name, st) in &m.metrics {
            let (d, p) = m
                .vs_baseline
                .get(name)
                .map_or((String::new(), String::new()), |p| {
                    (p.diff.to_string(), p.p_value.to_string())
                });
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{}",
                m.name, name, st.mean, st.ci95, st.n, d, p
            );
        }
    }
    s
}

/// A markdown table: one row per model, the main metrics at each cutoff (mean ± 95% interval),
/// RMSE/MAE when measured, fit and recommend times; a `*` marks p < 0.05 against the baseline.
pub fn to_markdown(r: &Report) -> String {
    let mut cols: Vec<Metric> = Vec::new();
    for &k in &r.ks {
        cols.extend(table_metrics(k));
    }
    for extra in [Metric::Auc, Metric::Rmse, Metric::Mae] {
        if r.models.iter().any(|m| m.metrics.contains_key(&extra)) {
            cols.push(extra);
        }
    }
    let header: Vec<String> = cols.iter().map(Metric::to_string).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| model | {} | fit s | rec ms/user |",
        header.join(" | ")
    );
    let _ = writeln!(s, "|---|{}---|---|", "---|".repeat(cols.len()));
    for m in &r.models {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match m.metrics.get(c) {
                Some(st) => {
                    let star = m
                        .vs_baseline
                        .get(c)
                        .filter(|p| p.p_value < 0.05)
                        .map_or("", |_| "*");
                    if st.ci95 > 0.0 {
                        format!("{:.4} ± {:.4}{star}", st.mean, st.ci95)
                    } else {
                        format!("{:.4}{star}", st.mean)
                    }
                }
                None => "–".into(),
            })
            .collect();
        let fit: f64 = m.fit_seconds.iter().sum::<f64>() / m.fit_seconds.len().max(1) as f64;
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.3} |",
            m.name,
            cells.join(" | "),
            fit,
            m.recommend_ms_per_user
        );
    }
    s
}
