//! Means, confidence intervals and the paired t-test used to compare models.

use serde::{Deserialize, Serialize};

/// Mean of a metric with its 95% confidence half-width and sample size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Sample mean.
    pub mean: f64,
    /// Half-width of the 95% interval (Student t), 0 for fewer than two samples.
    pub ci95: f64,
    /// Number of samples.
    pub n: usize,
}

impl Stat {
    /// Summarises samples.
    pub fn of(xs: &[f64]) -> Stat {
        let n = xs.len();
        if n == 0 {
            return Stat::default();
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Stat { mean, ci95: 0.0, n };
        }
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Stat {
            mean,
            ci95: t_quantile_975((n - 1) as f64) * (var / n as f64).sqrt(),
            n,
        }
    }
}

/// Result of a paired two-sided t-test of `a − b`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    /// Mean difference.
    pub diff: f64,
    /// t statistic.
    pub t: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Paired t-test over aligned samples (same users in the same order).
pub fn paired_t(a: &[f64], b: &[f64]) -> Option<Paired> {
    if a.len() != b.len() {
        return None;
    }
    // Pairs where either side is undefined (NaN, e.g. AUC without negatives) are left out.
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x - y)
        .filter(|d| !d.is_nan())
        .collect();
    if d.len() < 2 {
        return None;
    }
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if var == 0.0 {
        return Some(Paired {
            diff: mean,
            t: if mean == 0.0 {
                0.0
            } else {
                f64::INFINITY.copysign(mean)
            },
            p_value: if mean == 0.0 { 1.0 } else { 0.0 },
        });
    }
    let t = mean / (var / n).sqrt();
    Some(Paired {
        diff: mean,
        t,
        p_value: t_two_sided_p(t, n - 1.0),
    })
}

/// Two-sided p-value of Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2).
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The 97.5% quantile of Student's t, by bisection on the p-value.
pub fn t_quantile_975(df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1000.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided_p(mid, df) > 0.05 {
            lo = mid
        } else {
            hi = mid
        }
    }
    0.5 * (lo + hi)
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for x > 0.
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta I_x(a, b), by Lentz's continued fraction.
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(b, a, 1.0 - x);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..300 {
        let m = m as f64;
        for step in 0..2 {
            let num = if step == 0 {
                m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
            } else {
                -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
            };
            d = 1.0 + num * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + num / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f / a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_distribution_matches_tables() {
        // Reference values from standard t tables.
        assert!((t_two_sided_p(2.228, 10.0) - 0.05).abs() < 1e-3);
        assert!(
            (t_two_sided_p(1.0, 1.0) - 0.5).abs() < 1e-9,
            "Cauchy: P(|T|>1) = 1/2"
        );
        assert!((t_quantile_975(1e7) - 1.959964).abs() < 1e-3);
        assert!((t_quantile_975(5.0) - 2.570582).abs() < 1e-4);
        assert_eq!(t_two_sided_p(0.0, 7.0), 1.0);
    }

    #[test]
    fn stat_and_paired_by_hand() {
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!(s.mean, 2.0);
        // sd = 1, se = 1/sqrt(3), t(2) = 4.302653
        assert!((s.ci95 - 4.302653 / 3f64.sqrt()).abs() < 1e-4);
        let p = paired_t(&[2.0, 3.0, 5.0], &[1.0, 1.0, 2.0]).unwrap();
        // diffs 1, 2, 3: mean 2, sd 1, t = 2·sqrt(3)
        assert!((p.t - 2.0 * 3f64.sqrt()).abs() < 1e-12);
        assert!(p.p_value > 0.05 && p.p_value < 0.1);
        assert_eq!(paired_t(&[1.0, 1.0], &[1.0, 1.0]).unwrap().p_value, 1.0);
    }
}
