//! Online experiments: who sees which model (a hash of the experiment and the user), team-draft
//! interleaving, and the statistics of the outcomes (click-through and conversion with
//! intervals, a two-proportion test, its always-valid sequential form, the interleaving
//! preference). Pure functions: the server stores impressions and events and hands them here.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Result, ServeError};

/// One arm of an experiment: a model version and its share of the experiment's users.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    /// Name shown in results and responses (`control`, `candidate`, …).
    pub name: String,
    /// The model version that answers this arm's users (its artifact must be kept).
    pub version: i64,
    /// Relative share of the experiment's users (ignored by interleaving).
    #[serde(default = "one")]
    pub share: f64,
}

fn one() -> f64 {
    1.0
}

/// How the arms are compared.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Design {
    /// Each user sees one arm's lists (A/B/n); arms are compared by click-through.
    Split,
    /// Each list mixes two arms' lists by team draft; each list's clicks credit one arm.
    Interleave,
}

/// The guard rail: stops an arm whose click-through falls significantly below control's.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Guard {
    /// Check running experiments (every `experiments.check_seconds` and at each results call).
    pub enabled: bool,
    /// Impressions each of the two arms needs before the check applies.
    pub min_impressions: u64,
    /// Level of the sequential test that stops an arm.
    pub alpha: f64,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            enabled: true,
            min_impressions: 200,
            alpha: 0.05,
        }
    }
}

/// An experiment as created: `POST /v1/experiments`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Unique name; part of the assignment hash, so a new name reshuffles users.
    pub name: String,
    /// `split` (A/B/n, the default) or `interleave` (exactly two arms).
    #[serde(default = "split")]
    pub design: Design,
    /// The arms; the first is the control every other arm is compared with.
    pub arms: Vec<ArmSpec>,
    /// Share of all users in the experiment (the rest get the active version, unlogged as an
    /// arm).
    #[serde(default = "one")]
    pub traffic: f64,
    /// The guard rail.
    #[serde(default)]
    pub guard: Guard,
}

fn split() -> Design {
    Design::Split
}

/// Most arms of one experiment.
pub const MAX_ARMS: usize = 16;

impl ExperimentSpec {
    /// Checks the specification (the versions are checked by the server).
    pub fn validate(&self, max_id: usize) -> Result<()> {
        let bad = |m: String| Err(ServeError::Unprocessable(m));
        let id_ok =
            |s: &str| !s.is_empty() && s.len() <= max_id && !s.chars().any(char::is_control);
        if !id_ok(&self.name) {
            return bad(format!(
                "name: 1 to {max_id} bytes without control characters"
            ));
        }
        if !(2..=MAX_ARMS).contains(&self.arms.len()) {
            return bad(format!(
                "an experiment needs 2 to {MAX_ARMS} arms, got {}",
                self.arms.len()
            ));
        }
        if self.design == Design::Interleave && self.arms.len() != 2 {
            return bad("interleaving compares exactly two arms".into());
        }
        for (k, a) in self.arms.iter().enumerate() {
            if !id_ok(&a.name) {
                return bad(format!(
                    "arms[{k}].name: 1 to {max_id} bytes without control characters"
                ));
            }
            if self.arms[..k].iter().any(|b| b.name == a.name) {
                return bad(format!("two arms are named {:?}", a.name));
            }
            if !(a.share > 0.0 && a.share.is_finite()) {
                return bad(format!(
                    "arms[{k}].share must be a number > 0, got {}",
                    a.share
                ));
            }
        }
        if !(self.traffic > 0.0 && self.traffic <= 1.0) {
            return bad(format!("traffic must be in (0, 1], got {}", self.traffic));
        }
        let g = &self.guard;
        if !(g.alpha > 0.0 && g.alpha < 1.0) {
            return bad(format!("guard.alpha must be in (0, 1), got {}", g.alpha));
        }
        Ok(())
    }
}

/// A uniform number in [0, 1) fixed by the experiment, the user and a salt: SHA-256 of the
/// three, so assignments are stable across restarts and replicas and independent between
/// experiments.
pub fn bucket(experiment: &str, user: &str, salt: &str) -> f64 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [experiment, user, salt] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// The arm of `user`, or None when the user is outside the experiment's traffic. Split
/// designs pick by the shares; interleaving puts every user in the experiment on arm 0 (both
/// arms answer each list).
pub fn assign(spec: &ExperimentSpec, user: &str) -> Option<usize> {
    if bucket(&spec.name, user, "traffic") >= spec.traffic {
        return None;
    }
    if spec.design == Design::Interleave {
        return Some(0);
    }
    let total: f64 = spec.arms.iter().map(|a| a.share).sum();
    let x = bucket(&spec.name, user, "arm") * total;
    let mut acc = 0.0;
    for (k, a) in spec.arms.iter().enumerate() {
        acc += a.share;
        if x < acc {
            return Some(k);
        }
    }
    Some(spec.arms.len() - 1)
}

/// Team-draft interleaving (Radlinski, Kurup & Joachims 2008) of two rankings into at most
/// `k` items: the team with fewer picks (a fair coin on ties, drawn from `coin`) adds its best
/// item not yet shown. Returns the items and, for each, the team (0 or 1) that placed it.
pub fn team_draft<T: Clone + PartialEq>(
    a: &[T],
    b: &[T],
    k: usize,
    mut coin: impl FnMut() -> bool,
) -> (Vec<T>, Vec<u8>) {
    let (mut items, mut teams) = (Vec::with_capacity(k), Vec::with_capacity(k));
    let (mut na, mut nb) = (0usize, 0usize);
    let (mut ia, mut ib) = (0usize, 0usize);
    while items.len() < k {
        while ia < a.len() && items.contains(&a[ia]) {
            ia += 1;
        }
        while ib < b.len() && items.contains(&b[ib]) {
            ib += 1;
        }
        let (has_a, has_b) = (ia < a.len(), ib < b.len());
        if !has_a && !has_b {
            break;
        }
        let pick_a = has_a && (!has_b || na < nb || (na == nb && coin()));
        if pick_a {
            items.push(a[ia].clone());
            teams.push(0);
            na += 1;
        } else {
            items.push(b[ib].clone());
            teams.push(1);
            nb += 1;
        }
    }
    (items, teams)
}

/// A proportion with its 95% Wilson interval.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct Rate {
    /// Successes.
    pub successes: u64,
    /// Trials.
    pub trials: u64,
    /// successes / trials (0 without trials).
    pub rate: f64,
    /// 95% interval, low end.
    pub low: f64,
    /// 95% interval, high end.
    pub high: f64,
}

const Z95: f64 = 1.959_963_984_540_054;

impl Rate {
    /// The rate of `successes` in `trials`.
    pub fn of(successes: u64, trials: u64) -> Rate {
        if trials == 0 {
            return Rate {
                successes,
                trials,
                rate: 0.0,
                low: 0.0,
                high: 1.0,
            };
        }
        let n = trials as f64;
        let p = successes as f64 / n;
        let z2 = Z95 * Z95;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
        Rate {
            successes,
            trials,
            rate: p,
            low: (centre - half).max(0.0),
            high: (centre + half).min(1.0),
        }
    }
}

/// One arm against control: difference of rates with a fixed-horizon test and its
/// always-valid (sequential) form.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct Comparison {
    /// Arm rate minus control rate.
    pub diff: f64,
    /// 95% interval of the difference (normal approximation).
    pub low: f64,
    /// High end.
    pub high: f64,
    /// Two-sided p-value of the two-proportion z-test, valid when looked at once, at a size
    /// fixed in advance.
    pub p_value: f64,
    /// Always-valid p-value (mixture sequential probability ratio test, Johari et al. 2017):
    /// valid however often the results are looked at, so a decision may be taken the first
    /// time it is below the level.
    pub p_sequential: f64,
}

/// Standard normal upper tail.
fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function: the Chebyshev fit of Numerical Recipes' `erfcc`, relative
/// error below 1.2e-7 everywhere.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// `arm` against `control`. `tau` is the standard deviation of the effects the sequential
/// test is tuned for (its mixing distribution N(0, τ²) over the true difference).
pub fn compare(control: &Rate, arm: &Rate, tau: f64) -> Option<Comparison> {
    if control.trials == 0 || arm.trials == 0 {
        return None;
    }
    let (p0, p1) = (control.rate, arm.rate);
    let (n0, n1) = (control.trials as f64, arm.trials as f64);
    let diff = p1 - p0;
    let se = (p0 * (1.0 - p0) / n0 + p1 * (1.0 - p1) / n1).sqrt();
    // The test uses the pooled variance under the null hypothesis of equal rates.
    let pooled = (control.successes + arm.successes) as f64 / (n0 + n1);
    let v0 = pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1);
    let (p_value, p_sequential) = if v0 > 0.0 {
        let z = diff / v0.sqrt();
        let t2 = tau * tau;
        let lambda = (v0 / (v0 + t2)).sqrt() * (t2 * diff * diff / (2.0 * v0 * (v0 + t2))).exp();
        ((2.0 * normal_sf(z.abs())).min(1.0), (1.0 / lambda).min(1.0))
    } else {
        (1.0, 1.0)
    };
    Some(Comparison {
        diff,
        low: diff - Z95 * se,
        high: diff + Z95 * se,
        p_value,
        p_sequential,
    })
}

/// What an impression was, for the statistics.
#[derive(Clone, Debug)]
pub struct Shown {
    /// Response id.
    pub id: String,
    /// Arm index (split) or None.
    pub arm: Option<usize>,
    /// Items in their positions.
    pub items: Vec<String>,
    /// Team of each position (interleaving).
    pub teams: Vec<u8>,
}

/// An event citing a response.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The cited response id.
    pub recommendation: String,
    /// The item acted on.
    pub item: String,
    /// Counts as a click.
    pub click: bool,
    /// Counts as a conversion.
    pub conversion: bool,
}

/// One arm's results.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ArmResult {
    /// The arm's name.
    pub name: String,
    /// Its model version.
    pub version: i64,
    /// Lists shown.
    pub impressions: u64,
    /// Share of lists with at least one click.
    pub ctr: Rate,
    /// Share of lists with at least one conversion.
    pub conversion: Rate,
    /// Clicks per shown item at each position (1-based order), for the first 10 positions.
    pub ctr_by_position: Vec<Rate>,
    /// Against control (absent for control itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_control: Option<Comparison>,
    /// Stopped by the guard rail: its users now get control's lists.
    pub stopped: bool,
}

/// Interleaving's verdict.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Preference {
    /// Lists whose clicks favoured arm 0 (more clicks on its team's items).
    pub wins_first: u64,
    /// Lists that favoured arm 1.
    pub wins_second: u64,
    /// Lists with clicks and a tie.
    pub ties: u64,
    /// (wins_second − wins_first) / (lists with clicks): above 0 favours arm 1.
    pub delta: f64,
    /// Two-sided p-value of the sign test over the lists with a winner (normal approximation).
    pub p_value: f64,
}

/// One arm's counts.
#[derive(Clone, Debug)]
pub struct ArmTally {
    /// Lists shown.
    pub impressions: u64,
    /// Lists with a click.
    pub ctr: Rate,
    /// Lists with a conversion.
    pub conversion: Rate,
    /// Clicks per shown item at the first 10 positions.
    pub by_position: Vec<Rate>,
}

/// The outcomes of one shown list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reaction {
    /// Clicked, per position.
    pub clicks: Vec<bool>,
    /// At least one click.
    pub click: bool,
    /// At least one conversion.
    pub conversion: bool,
}

/// Joins outcomes to the lists they cite: one reaction per list of `shown`, in its order.
/// Outcomes on items not in the cited list, or citing unknown lists, are ignored: a client
/// may cite a list and then act on something else.
pub fn join(shown: &[Shown], outcomes: &[Outcome]) -> Vec<Reaction> {
    let mut out: Vec<Reaction> = shown
        .iter()
        .map(|s| Reaction {
            clicks: vec![false; s.items.len()],
            ..Reaction::default()
        })
        .collect();
    let by_id: FxHashMap<&str, usize> = shown
        .iter()
        .enumerate()
        .map(|(k, s)| (s.id.as_str(), k))
        .collect();
    for o in outcomes {
        let Some(&k) = by_id.get(o.recommendation.as_str()) else {
            continue;
        };
        let Some(pos) = shown[k].items.iter().position(|i| *i == o.item) else {
            continue;
        };
        let r = &mut out[k];
        if o.click {
            r.click = true;
            r.clicks[pos] = true;
        }
        r.conversion |= o.conversion;
    }
    out
}

/// Per-arm click-through from impressions and their outcomes (joined by [`join`]).
pub fn results(
    arms: usize,
    shown: &[Shown],
    outcomes: &[Outcome],
) -> (Vec<ArmTally>, Option<Preference>) {
    let reactions = join(shown, outcomes);
    const POSITIONS: usize = 10;
    let mut acc = vec![(0u64, 0u64, 0u64, vec![(0u64, 0u64); POSITIONS]); arms];
    let (mut w0, mut w1, mut ties) = (0u64, 0u64, 0u64);
    for (s, r) in shown.iter().zip(&reactions) {
        let (click, at) = (r.click, &r.clicks);
        if let Some(a) = s.arm.filter(|&a| a < arms) {
            let e = &mut acc[a];
            e.0 += 1;
            e.1 += u64::from(click);
            e.2 += u64::from(r.conversion);
            for (p, &c) in at.iter().enumerate().take(POSITIONS) {
                e.3[p].0 += u64::from(c);
                e.3[p].1 += 1;
            }
        }
        if !s.teams.is_empty() && click {
            let (mut c0, mut c1) = (0u32, 0u32);
            for (&c, &t) in at.iter().zip(&s.teams) {
                if c {
                    if t == 0 {
                        c0 += 1;
                    } else {
                        c1 += 1;
                    }
                }
            }
            match c0.cmp(&c1) {
                std::cmp::Ordering::Greater => w0 += 1,
                std::cmp::Ordering::Less => w1 += 1,
                std::cmp::Ordering::Equal => ties += 1,
            }
        }
    }
    let per_arm = acc
        .into_iter()
        .map(|(n, c, v, pos)| ArmTally {
            impressions: n,
            ctr: Rate::of(c, n),
            conversion: Rate::of(v, n),
            by_position: pos.into_iter().map(|(c, n)| Rate::of(c, n)).collect(),
        })
        .collect();
    let interleaved = shown.iter().any(|s| !s.teams.is_empty());
    let pref = interleaved.then(|| {
        let decided = (w0 + w1) as f64;
        let z = if decided > 0.0 {
            (w1 as f64 - w0 as f64) / decided.sqrt()
        } else {
            0.0
        };
        Preference {
            wins_first: w0,
            wins_second: w1,
            ties,
            delta: (w1 as f64 - w0 as f64) / ((w0 + w1 + ties) as f64).max(1.0),
            p_value: (2.0 * normal_sf(z.abs())).min(1.0),
        }
    });
    (per_arm, pref)
}

/// Whether the guard rail stops an arm: enough impressions on both sides, a lower rate than
/// control, and the sequential test below the level.
pub fn guard_stops(g: &Guard, control: &Rate, arm: &Rate, tau: f64) -> bool {
    if !g.enabled || control.trials < g.min_impressions || arm.trials < g.min_impressions {
        return false;
    }
    compare(control, arm, tau).is_some_and(|c| c.diff < 0.0 && c.p_sequential < g.alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn spec(arms: &[(&str, f64)], traffic: f64) -> ExperimentSpec {
        ExperimentSpec {
            name: "e1".into(),
            design: Design::Split,
            arms: arms
                .iter()
                .enumerate()
                .map(|(k, (n, s))| ArmSpec {
                    name: n.to_string(),
                    version: k as i64 + 1,
                    share: *s,
                })
                .collect(),
            traffic,
            guard: Guard::default(),
        }
    }

    /// Assignment follows the shares and the traffic, and is a function of the user alone.
    #[test]
    fn assignment_follows_shares_and_is_stable() {
        let s = spec(&[("a", 1.0), ("b", 3.0)], 0.5);
        let n = 40_000;
        let mut counts = [0usize; 3];
        for u in 0..n {
            let user = format!("user-{u}");
            let a = assign(&s, &user);
            assert_eq!(a, assign(&s, &user));
            counts[a.map_or(2, |k| k)] += 1;
        }
        let share = |c: usize| c as f64 / n as f64;
        // Binomial sd at n = 40k is under 0.0025: 4 sd bounds.
        assert!((share(counts[2]) - 0.5).abs() < 0.01, "{counts:?}");
        assert!((share(counts[0]) - 0.125).abs() < 0.01, "{counts:?}");
        assert!((share(counts[1]) - 0.375).abs() < 0.01, "{counts:?}");
        // Another experiment's split is independent of this one's.
        let other = ExperimentSpec {
            name: "e2".into(),
            ..s.clone()
        };
        let both = (0..n)
            .filter(|u| {
                let user = format!("user-{u}");
                assign(&s, &user) == Some(1) && assign(&other, &user) == Some(1)
            })
            .count();
        assert!((share(both) - 0.375 * 0.375).abs() < 0.01);
    }

    /// Team draft: every item of the result comes from its team's list, no item twice, the
    /// teams' counts differ by at most one, and each team's items keep that team's order.
    #[test]
    fn team_draft_is_fair_and_keeps_each_ranking() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..500 {
            let len = rng.gen_range(0..12);
            let a: Vec<u32> = (0..len).map(|_| rng.gen_range(0..15)).collect();
            let b: Vec<u32> = (0..rng.gen_range(0..12))
                .map(|_| rng.gen_range(0..15))
                .collect();
            let k = rng.gen_range(0..10);
            let (items, teams) = team_draft(&a, &b, k, || rng.gen());
            assert!(items.len() <= k);
            for (i, x) in items.iter().enumerate() {
                assert!(!items[..i].contains(x));
                assert!(if teams[i] == 0 {
                    a.contains(x)
                } else {
                    b.contains(x)
                });
            }
            let n0 = teams.iter().filter(|&&t| t == 0).count() as i64;
            let n1 = teams.len() as i64 - n0;
            // Counts part by more than one only once the smaller team's list is used up.
            if (n0 - n1).abs() > 1 {
                let short = if n0 < n1 { &a } else { &b };
                assert!(short.iter().all(|x| items.contains(x)), "{teams:?}");
            }
        }
        // Identical rankings give back that ranking.
        let (items, _) = team_draft(&[1, 2, 3, 4], &[1, 2, 3, 4], 4, || true);
        assert_eq!(items, [1, 2, 3, 4]);
    }

    /// Hand-computed: 120/1000 against 100/1000.
    #[test]
    fn two_proportion_test_by_hand() {
        let c = compare(&Rate::of(100, 1000), &Rate::of(120, 1000), 0.02).unwrap();
        // pooled 0.11, v0 = 0.11·0.89·0.002 = 0.0001958, z = 0.02 / 0.013993 = 1.4293,
        // p = 0.1529.
        assert!((c.diff - 0.02).abs() < 1e-12);
        assert!((c.p_value - 0.1529).abs() < 5e-4, "{c:?}");
        // Λ = sqrt(v/(v+τ²))·exp(τ²d²/(2v(v+τ²))) with τ² = 0.0004: 0.5730·exp(0.6866) = 1.138.
        assert!((c.p_sequential - 1.0 / 1.1385).abs() < 2e-3, "{c:?}");
        let w = Rate::of(100, 1000);
        // Wilson 95% for 0.1 at n = 1000: [0.0828, 0.1202].
        assert!(
            (w.low - 0.0828).abs() < 5e-4 && (w.high - 0.1202).abs() < 5e-4,
            "{w:?}"
        );
        assert!((normal_sf(1.959_964) - 0.025).abs() < 1e-6);
    }

    /// Under equal rates, looking after every 100 lists up to 5,000 per arm, the sequential
    /// p-value crosses 0.05 in at most about 5% of runs, while the fixed-horizon test read at
    /// every look crosses far more often: why the sequential one decides.
    #[test]
    fn sequential_p_values_survive_peeking() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let runs = 300;
        let (mut seq, mut fixed) = (0, 0);
        for _ in 0..runs {
            let (mut c0, mut c1, mut n) = (0u64, 0u64, 0u64);
            let (mut s_hit, mut f_hit) = (false, false);
            while n < 5000 {
                for _ in 0..100 {
                    c0 += u64::from(rng.gen::<f64>() < 0.1);
                    c1 += u64::from(rng.gen::<f64>() < 0.1);
                }
                n += 100;
                let c = compare(&Rate::of(c0, n), &Rate::of(c1, n), 0.02).unwrap();
                s_hit |= c.p_sequential < 0.05;
                f_hit |= c.p_value < 0.05;
            }
            seq += usize::from(s_hit);
            fixed += usize::from(f_hit);
        }
        let (seq, fixed) = (seq as f64 / runs as f64, fixed as f64 / runs as f64);
        assert!(seq <= 0.08, "sequential false positives {seq}");
        assert!(fixed >= 0.15, "peeking at the fixed test {fixed}");
    }

    #[test]
    fn results_join_outcomes_to_positions_and_teams() {
        let shown = vec![
            Shown {
                id: "r1".into(),
                arm: Some(0),
                items: vec!["a".into(), "b".into(), "c".into()],
                teams: vec![],
            },
            Shown {
                id: "r2".into(),
                arm: Some(1),
                items: vec!["a".into(), "b".into()],
                teams: vec![0, 1],
            },
            Shown {
                id: "r3".into(),
                arm: Some(1),
                items: vec!["d".into()],
                teams: vec![1],
            },
        ];
        let ev = |r: &str, i: &str, click: bool, conversion: bool| Outcome {
            recommendation: r.into(),
            item: i.into(),
            click,
            conversion,
        };
        let outcomes = vec![
            ev("r1", "b", true, false),
            ev("r1", "z", true, false), // not shown: ignored
            ev("r2", "b", true, true),
            ev("r9", "a", true, false), // unknown list: ignored
        ];
        let (arms, pref) = results(2, &shown, &outcomes);
        assert_eq!(arms[0].impressions, 1);
        assert_eq!(arms[0].ctr.successes, 1);
        assert_eq!(arms[0].by_position[1].successes, 1);
        assert_eq!(arms[0].by_position[0].successes, 0);
        let b = &arms[1];
        assert_eq!(
            (b.impressions, b.ctr.successes, b.conversion.successes),
            (2, 1, 1)
        );
        let p = pref.unwrap();
        assert_eq!((p.wins_first, p.wins_second, p.ties), (0, 1, 0));
    }
}
