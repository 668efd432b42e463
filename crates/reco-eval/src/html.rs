//! Self-contained HTML reports: inline SVG charts and tables, no script, no fonts or files
//! fetched, so a report opens offline in any browser. [`eval_report`] draws an evaluation's
//! [`Report`]; the chart and page helpers are public so other reports (a tuning run's) draw
//! the same way.

use std::fmt::Write;

use crate::metric::{Accuracy, Beyond, Metric};
use crate::Report;

/// Colours of series, in order (distinguishable in colour and in grey).
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Width and height of a chart, pixels.
const W: f64 = 520.0;
const H: f64 = 340.0;
/// Margins: left, right, top, bottom.
const ML: f64 = 64.0;
const MR: f64 = 150.0;
const MT: f64 = 34.0;
const MB: f64 = 48.0;

/// Escapes text for HTML and SVG.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One named series of points, with optional vertical error bars (half-widths).
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Half-widths of the points' intervals, when known.
    pub errors: Vec<f64>,
}

/// How a chart joins its points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Points joined by lines (curves over k).
    Lines,
    /// Points alone (one per series: trade-offs, trials).
    Points,
}

/// Ticks at round values covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    (0..=12)
        .map(|i| first + step * i as f64)
        .take_while(|t| *t <= hi + step * 1e-9)
        .collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The range a chart shows for `values`: padded, and including 0 when close to it.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if lo >= 0.0 && lo < (hi - lo) * 0.5 {
        lo = 0.0;
    }
    if hi - lo < 1e-12 {
        let pad = lo.abs().max(1.0) * 0.1;
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.06;
    (if lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
}

/// An SVG chart of `series`: axes with round ticks, labels, a legend, and for each point a
/// mark (`circle`) with its interval, joined by a `path` for [`Style::Lines`]. `id` names the
/// figure in the page. Non-finite points are left out.
pub fn chart(
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    style: Style,
) -> String {
    let (x0, x1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (y0, y1) = range(series.iter().flat_map(|s| {
        s.points.iter().enumerate().flat_map(move |(i, p)| {
            let e = s.errors.get(i).copied().unwrap_or(0.0);
            [p.1 - e, p.1 + e]
        })
    }));
    let px = |x: f64| ML + (x - x0) / (x1 - x0) * (W - ML - MR);
    let py = |y: f64| H - MB - (y - y0) / (y1 - y0) * (H - MT - MB);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure id="{}"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        escape(id),
        escape(title)
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="20" class="title">{}</text>"#,
        ML,
        escape(title)
    );
    // Grid and ticks.
    for t in ticks(y0, y1) {
        let y = py(t);
        let _ = write!(
            s,
            r##"<line x1="{ML}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"##,
            W - MR,
            ML - 6.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
    for t in ticks(x0, x1) {
        let x = px(t);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"##,
            H - MB,
            H - MB + 5.0,
            H - MB + 18.0,
            fmt_tick(t)
        );
    }
    let _ = write!(
        s,
        r##"<line class="axis" x1="{ML}" x2="{ML}" y1="{MT}" y2="{:.1}" stroke="#333"/><line class="axis" x1="{ML}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        H - MB,
        W - MR,
        H - MB,
        H - MB
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" class="label" text-anchor="middle">{}</text><text transform="translate(16 {:.1}) rotate(-90)" class="label" text-anchor="middle">{}</text>"#,
        (ML + W - MR) / 2.0,
        H - 10.0,
        escape(x_label),
        (MT + H - MB) / 2.0,
        escape(y_label)
    );
    for (k, ser) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let pts: Vec<(usize, f64, f64)> = ser
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.0.is_finite() && p.1.is_finite())
            .map(|(i, p)| (i, px(p.0), py(p.1)))
            .collect();
        let _ = write!(s, r#"<g class="series" data-name="{}">"#, escape(&ser.name));
        if style == Style::Lines && pts.len() > 1 {
            let d: Vec<String> = pts
                .iter()
                .enumerate()
                .map(|(j, (_, x, y))| format!("{}{x:.1},{y:.1}", if j == 0 { "M" } else { "L" }))
                .collect();
            let _ = write!(
                s,
                r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                d.join(" ")
            );
        }
        for &(i, x, y) in &pts {
            if let Some(&e) = ser.errors.get(i).filter(|e| **e > 0.0 && e.is_finite()) {
                let p = ser.points[i].1;
                let _ = write!(
                    s,
                    r#"<line class="ci" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.2"/>"#,
                    py(p - e),
                    py(p + e)
                );
            }
            let _ = write!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}"><title>{}: ({}, {})</title></circle>"#,
                escape(&ser.name),
                fmt_tick(ser.points[i].0),
                fmt_tick(ser.points[i].1)
            );
        }
        let ly = MT + 14.0 + 18.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{:.1}" class="legend">{}</text></g>"#,
            W - MR + 12.0,
            ly - 10.0,
            W - MR + 30.0,
            ly,
            escape(&ser.name)
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// A page: the title, the style sheet, and the sections' HTML in order.
pub fn page(title: &str, sections: &[String]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{}</style></head><body><h1>{}</h1>",
        escape(title),
        CSS,
        escape(title)
    );
    for sec in sections {
        s.push_str(sec);
    }
    s.push_str("</body></html>\n");
    s
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
figure{display:inline-block;margin:8px}svg{background:#fff;border:1px solid #eee}\
.title{font-size:14px;font-weight:600}.tick{font-size:11px;fill:#555}.label{font-size:12px}\
.legend{font-size:12px}.better{color:#1a7f37;font-weight:600}.worse{color:#b42318;font-weight:600}\
p.note{font-size:13px;color:#555}";

/// Whether some model of the report has `m`.
fn measured(r: &Report, m: Metric) -> bool {
    r.models.iter().any(|md| md.metrics.contains_key(&m))
}

/// The HTML report of an evaluation: the comparison table with intervals and significance
/// marks, precision–recall and NDCG curves over the cutoffs, accuracy against coverage,
/// novelty and popularity, exposure (Gini, popularity of what is shown) and timings.
pub fn eval_report(r: &Report) -> String {
    let mut sections = Vec::new();
    // The table and the trade-off charts at 10 when it was measured (the usual headline),
    // else at the largest cutoff.
    let kmax = if r.ks.contains(&10) {
        10
    } else {
        r.ks.iter().copied().max().unwrap_or(10)
    };
    sections.push(format!(
        "<p class=\"note\">data <b>{}</b> · protocol <b>{}</b> · {} fold(s) · {} (fold, user) pairs · cutoffs {:?} · seed {}</p>",
        escape(&r.dataset),
        escape(&r.protocol),
        r.folds,
        r.users_evaluated,
        r.ks,
        r.config.seed
    ));
    sections.push(comparison_table(r, kmax));
    let mut figs = String::new();
    let curve = |acc: Accuracy| -> Vec<Series> {
        r.models
            .iter()
            .map(|m| {
                let (points, errors) =
                    r.ks.iter()
                        .filter_map(|&k| {
                            m.metrics
                                .get(&Metric::Accuracy(acc, k))
                                .map(|s| ((k as f64, s.mean), s.ci95))
                        })
                        .unzip();
                Series {
                    name: m.name.clone(),
                    points,
                    errors,
                }
            })
            .collect()
    };
    if r.config.ranking && !r.ks.is_empty() {
        let pr: Vec<Series> = r
            .models
            .iter()
            .map(|m| Series {
                name: m.name.clone(),
                points: r
                    .ks
                    .iter()
                    .filter_map(|&k| {
                        let p = m.metrics.get(&Metric::Accuracy(Accuracy::Precision, k))?;
                        let rc = m.metrics.get(&Metric::Accuracy(Accuracy::Recall, k))?;
                        Some((rc.mean, p.mean))
                    })
                    .collect(),
                errors: Vec::new(),
            })
            .collect();
        figs.push_str(&chart(
            "precision-recall",
            "Precision against recall (one point per cutoff)",
            "recall@k",
            "precision@k",
            &pr,
            Style::Lines,
        ));
        figs.push_str(&chart(
            "ndcg-at-k",
            "NDCG@k over k (95% intervals)",
            "k",
            "ndcg@k",
            &curve(Accuracy::Ndcg),
            Style::Lines,
        ));
        figs.push_str(&chart(
            "recall-at-k",
            "Recall@k over k (95% intervals)",
            "k",
            "recall@k",
            &curve(Accuracy::Recall),
            Style::Lines,
        ));
        let acc = Metric::Accuracy(Accuracy::Ndcg, kmax);
        for (b, what) in [
            (Beyond::Coverage, "catalogue coverage"),
            (Beyond::Novelty, "novelty"),
            (
                Beyond::AvgPopularity,
                "average popularity of the items shown",
            ),
            (Beyond::Diversity, "intra-list diversity"),
        ] {
            let bm = Metric::Beyond(b, kmax);
            if !measured(r, bm) {
                continue;
            }
            let pts = per_model(r, |m| {
                let a = m.metrics.get(&acc)?;
                Some((m.metrics.get(&bm)?.mean, a.mean, a.ci95))
            });
            figs.push_str(&chart(
                &format!("accuracy-vs-{}", b.name()),
                &format!("Accuracy against {what}"),
                &bm.to_string(),
                &acc.to_string(),
                &pts,
                Style::Points,
            ));
        }
        // Exposure: how concentrated the lists are on few items, by model.
        let gini = Metric::Beyond(Beyond::Gini, kmax);
        if measured(r, gini) {
            let cov = Metric::Beyond(Beyond::Coverage, kmax);
            let pts = per_model(r, |m| {
                let x = m.metrics.get(&cov).map_or(f64::NAN, |s| s.mean);
                Some((x, m.metrics.get(&gini)?.mean, 0.0))
            });
            figs.push_str(&chart(
                "long-tail-exposure",
                "Long-tail exposure (Gini; 1: few items get it all)",
                &format!("coverage@{kmax}"),
                &gini.to_string(),
                &pts,
                Style::Points,
            ));
        }
    }
    if let Some(rmse) = Some(Metric::Rmse).filter(|&m| measured(r, m)) {
        let pts = per_model(r, |m| {
            let s = m.metrics.get(&rmse)?;
            Some((m.fit_seconds.iter().sum::<f64>(), s.mean, s.ci95))
        });
        figs.push_str(&chart(
            "rmse-vs-time",
            "RMSE against fit time",
            "fit seconds (all folds)",
            "rmse",
            &pts,
            Style::Points,
        ));
    }
    for (field, table) in group_panels(r, kmax) {
        sections.push(table);
        figs.push_str(&field);
    }
    let timing = per_model(r, |m| {
        Some((
            m.fit_seconds.iter().sum::<f64>(),
            m.recommend_ms_per_user,
            0.0,
        ))
    });
    figs.push_str(&chart(
        "timings",
        "Fit time and time per user's list",
        "fit seconds (all folds)",
        "ms per user",
        &timing,
        Style::Points,
    ));
    sections.push(format!("<h2>Figures</h2>{figs}"));
    page(&format!("reco evaluation: {}", r.dataset), &sections)
}

/// Per user field of the evaluation's groups: a chart of NDCG@k by group (one series per
/// model, 95% intervals) and a table of the same figures with each group's size.
fn group_panels(r: &Report, k: usize) -> Vec<(String, String)> {
    let metric = Metric::Accuracy(Accuracy::Ndcg, k);
    let mut fields: Vec<&String> = r.models.iter().flat_map(|m| m.groups.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .map(|field| {
            let mut labels: Vec<&String> = r
                .models
                .iter()
                .filter_map(|m| m.groups.get(field))
                .flat_map(|g| g.keys())
                .collect();
            labels.sort();
            labels.dedup();
            let series: Vec<Series> = r
                .models
                .iter()
                .map(|m| {
                    let (points, errors) = labels
                        .iter()
                        .enumerate()
                        .filter_map(|(i, l)| {
                            let s = m.groups.get(field)?.get(*l)?.get(&metric)?;
                            Some(((i as f64, s.mean), s.ci95))
                        })
                        .unzip();
                    Series {
                        name: m.name.clone(),
                        points,
                        errors,
                    }
                })
                .collect();
            let key: Vec<String> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| format!("{i} = {l}"))
                .collect();
            let fig = chart(
                &format!("groups-{}", field),
                &format!("{metric} by user {field}"),
                &format!("{field}: {}", key.join(", ")),
                &metric.to_string(),
                &series,
                Style::Points,
            );
            let mut t = format!(
                "<h2>By user {0}</h2><table id=\"groups-{0}-table\"><tr><th>{0}</th><th>users</th>",
                escape(field)
            );
            for m in &r.models {
                let _ = write!(t, "<th>{} {}</th>", escape(&m.name), metric);
            }
            t.push_str("</tr>");
            for l in &labels {
                let n = r
                    .models
                    .iter()
                    .find_map(|m| Some(m.groups.get(field)?.get(*l)?.get(&metric)?.n))
                    .unwrap_or(0);
                let _ = write!(t, "<tr><td>{}</td><td>{n}</td>", escape(l));
                for m in &r.models {
                    match m
                        .groups
                        .get(field)
                        .and_then(|g| g.get(*l))
                        .and_then(|g| g.get(&metric))
                    {
                        Some(s) => {
                            let _ = write!(t, "<td>{:.4} ± {:.4}</td>", s.mean, s.ci95);
                        }
                        None => t.push_str("<td>–</td>"),
                    }
                }
                t.push_str("</tr>");
            }
            t.push_str("</table>");
            (fig, t)
        })
        .collect()
}

/// One single-point series per model that has the point: (x, y, y's interval half-width).
fn per_model(
    r: &Report,
    point: impl Fn(&crate::evaluator::ModelReport) -> Option<(f64, f64, f64)>,
) -> Vec<Series> {
    r.models
        .iter()
        .filter_map(|m| {
            let (x, y, e) = point(m)?;
            Some(Series {
                name: m.name.clone(),
                points: vec![(x, y)],
                errors: vec![e],
            })
        })
        .collect()
}

fn comparison_table(r: &Report, k: usize) -> String {
    let mut cols: Vec<Metric> = [
        Metric::Accuracy(Accuracy::Precision, k),
        Metric::Accuracy(Accuracy::Recall, k),
        Metric::Accuracy(Accuracy::Ndcg, k),
        Metric::Accuracy(Accuracy::Map, k),
        Metric::Accuracy(Accuracy::HitRate, k),
        Metric::Auc,
        Metric::Rmse,
        Metric::Mae,
        Metric::Beyond(Beyond::Coverage, k),
        Metric::Beyond(Beyond::Novelty, k),
    ]
    .into_iter()
    .filter(|&m| measured(r, m))
    .collect();
    cols.dedup();
    let mut s = String::from("<h2>Comparison</h2><table id=\"comparison\"><tr><th>model</th>");
    for c in &cols {
        let _ = write!(s, "<th>{}</th>", escape(&c.to_string()));
    }
    s.push_str("<th>fit s</th></tr>");
    for m in &r.models {
        let _ = write!(s, "<tr><td>{}</td>", escape(&m.name));
        for c in &cols {
            match m.metrics.get(c) {
                Some(st) => {
                    // ▲/▼: significantly better/worse than the baseline (paired t, p < 0.05).
                    let mark = m.vs_baseline.get(c).filter(|p| p.p_value < 0.05).map(|p| {
                        let lower_better = matches!(c, Metric::Rmse | Metric::Mae);
                        let better = (p.diff > 0.0) != lower_better;
                        if better {
                            " <span class=\"better\" title=\"better than the baseline, p &lt; 0.05\">▲</span>"
                        } else {
                            " <span class=\"worse\" title=\"worse than the baseline, p &lt; 0.05\">▼</span>"
                        }
                    });
                    // One value per fold (beyond-accuracy metrics on one fold) has no interval.
                    let ci = if st.n > 1 {
                        format!(" ± {:.4}", st.ci95)
                    } else {
                        String::new()
                    };
                    let _ = write!(s, "<td>{:.4}{ci}{}</td>", st.mean, mark.unwrap_or(""));
                }
                None => s.push_str("<td>–</td>"),
            }
        }
        let _ = write!(s, "<td>{:.3}</td></tr>", m.fit_seconds.iter().sum::<f64>());
    }
    s.push_str("</table>");
    if let Some(b) = &r.config.baseline {
        let _ = write!(
            s,
            "<p class=\"note\">▲/▼: significantly better/worse than <b>{}</b> (paired t-test over users, p &lt; 0.05). Intervals are 95%.</p>",
            escape(b)
        );
    } else {
        s.push_str("<p class=\"note\">Intervals are 95%. Give a baseline (<code>--baseline NAME</code>) for significance marks.</p>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(0.0, 1.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let t = ticks(0.013, 0.087);
        assert!(
            t.len() >= 3 && t[0] >= 0.013 && *t.last().expect("tick") <= 0.087,
            "{t:?}"
        );
        assert_eq!(fmt_tick(0.25), "0.25");
        assert_eq!(fmt_tick(1500.0), "1500");
    }

    #[test]
    fn a_chart_places_higher_values_higher_and_escapes_names() {
        let s = vec![Series {
            name: "<a&b>".into(),
            points: vec![(1.0, 0.1), (5.0, 0.3), (10.0, f64::NAN)],
            errors: vec![0.01, 0.02, 0.0],
        }];
        let svg = chart("c", "T", "k", "v", &s, Style::Lines);
        assert!(svg.contains("&lt;a&amp;b&gt;") && !svg.contains("<a&b>"));
        // Two finite points: two marks, one path through them, the NaN left out.
        assert_eq!(svg.matches("<circle").count(), 2);
        let cy: Vec<f64> = svg
            .split("cy=\"")
            .skip(1)
            .map(|x| {
                x.split('"')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("cy")
            })
            .collect();
        assert!(cy[1] < cy[0], "0.3 is drawn above 0.1: {cy:?}");
        assert!(cy.iter().all(|y| (MT..=H - MB).contains(y)));
        assert_eq!(svg.matches("class=\"ci\"").count(), 2);
        assert!(svg.contains("<path d=\"M"));
    }
}
