//! How often the server's experiment statistics find a real difference, and how often they
//! find one that is not there, over many simulated experiments (bench/ab_simulation.sh).
//!
//! The click model: 400 items in 8 categories; each user likes one category. A shown item is
//! examined with probability 1/√(1 + position) (position bias) and, once examined, clicked with
//! probability 0.3 if it is in the user's category and 0.03 otherwise (a position-based model).
//! A ranker fills each list of 10 from the user's category with probability `precision` per
//! slot (the rest from other categories), in random order. The good ranker has precision 0.6,
//! the degraded one 0.5; in A/A runs both arms use the good one. Users are split between the
//! arms by the server's own hash assignment, each user asks for `visits` lists, and every
//! figure is computed by the server's own functions (`assign`, `compare`, `guard_stops`,
//! `team_draft`, `results`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reco_serve::experiment::{
    assign, compare, guard_stops, results, team_draft, ArmSpec, Design, ExperimentSpec, Guard,
    Outcome, Rate, Shown,
};

const ITEMS: usize = 400;
const CATEGORIES: usize = 8;
const K: usize = 10;

fn examined(p: usize) -> f64 {
    1.0 / (1.0 + p as f64).sqrt()
}

fn relevance(user_cat: usize, item: usize) -> f64 {
    if item % CATEGORIES == user_cat {
        0.3
    } else {
        0.03
    }
}

/// A list of `K` distinct items: each slot from the user's category with probability
/// `precision`.
fn ranking(rng: &mut ChaCha8Rng, user_cat: usize, precision: f64) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::with_capacity(K);
    while out.len() < K {
        let item = if rng.gen::<f64>() < precision {
            rng.gen_range(0..ITEMS / CATEGORIES) * CATEGORIES + user_cat
        } else {
            let c = (user_cat + rng.gen_range(1..CATEGORIES)) % CATEGORIES;
            rng.gen_range(0..ITEMS / CATEGORIES) * CATEGORIES + c
        };
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn clicks(rng: &mut ChaCha8Rng, user_cat: usize, list: &[usize]) -> Vec<bool> {
    list.iter()
        .enumerate()
        .map(|(p, &i)| rng.gen::<f64>() < examined(p) * relevance(user_cat, i))
        .collect()
}

struct Run {
    fixed: bool,
    sequential: bool,
    guard: bool,
    interleaved: bool,
    ctr: (f64, f64),
}

/// One simulated experiment of `users` users with `visits` lists each; arm 1's ranker has
/// precision `p1` (arm 0's is 0.6). Looks at the results after every 200 lists.
fn run(seed: u64, users: usize, visits: usize, p1: f64) -> Run {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let spec = ExperimentSpec {
        name: format!("sim-{seed}"),
        design: Design::Split,
        arms: ["control", "candidate"]
            .iter()
            .enumerate()
            .map(|(k, n)| ArmSpec {
                name: n.to_string(),
                version: k as i64,
                share: 1.0,
            })
            .collect(),
        traffic: 1.0,
        guard: Guard::default(),
    };
    let precision = [0.6, p1];
    let (mut shown, mut outcomes) = (Vec::new(), Vec::new());
    let (mut n, mut c) = ([0u64; 2], [0u64; 2]);
    let (mut sequential, mut guard) = (false, false);
    let (mut il_shown, mut il_out) = (Vec::new(), Vec::new());
    let tau = 0.02;
    for v in 0..visits {
        for u in 0..users {
            let user = format!("u{u}");
            let cat = u % CATEGORIES;
            let Some(arm) = assign(&spec, &user) else {
                continue;
            };
            let list = ranking(&mut rng, cat, precision[arm]);
            let hit = clicks(&mut rng, cat, &list);
            n[arm] += 1;
            c[arm] += u64::from(hit.iter().any(|&h| h));
            let id = format!("{u}-{v}");
            for (&i, &h) in list.iter().zip(&hit) {
                if h {
                    outcomes.push(Outcome {
                        recommendation: id.clone(),
                        item: i.to_string(),
                        click: true,
                        conversion: false,
                    });
                }
            }
            shown.push(Shown {
                id: id.clone(),
                arm: Some(arm),
                items: list.iter().map(|i| i.to_string()).collect(),
                teams: Vec::new(),
            });
            // The same user's visit under interleaving of the two rankers.
            let (a, b) = (
                ranking(&mut rng, cat, precision[0]),
                ranking(&mut rng, cat, precision[1]),
            );
            let (mixed, teams) = team_draft(&a, &b, K, || rng.gen());
            let hit = clicks(&mut rng, cat, &mixed);
            for (&i, &h) in mixed.iter().zip(&hit) {
                if h {
                    il_out.push(Outcome {
                        recommendation: id.clone(),
                        item: i.to_string(),
                        click: true,
                        conversion: false,
                    });
                }
            }
            il_shown.push(Shown {
                id,
                arm: None,
                items: mixed.iter().map(|i| i.to_string()).collect(),
                teams,
            });
            if (n[0] + n[1]) % 200 == 0 {
                let (r0, r1) = (Rate::of(c[0], n[0]), Rate::of(c[1], n[1]));
                sequential |= compare(&r0, &r1, tau).is_some_and(|x| x.p_sequential < 0.05);
                guard |= guard_stops(&spec.guard, &r0, &r1, tau);
            }
        }
    }
    // The final figures through the same join the server uses.
    let (arms, _) = results(2, &shown, &outcomes);
    let (_, pref) = results(0, &il_shown, &il_out);
    let cmp = compare(&arms[0].ctr, &arms[1].ctr, tau);
    Run {
        fixed: cmp.as_ref().is_some_and(|x| x.p_value < 0.05),
        sequential,
        guard,
        interleaved: pref.is_some_and(|p| p.p_value < 0.05 && p.delta != 0.0),
        ctr: (arms[0].ctr.rate, arms[1].ctr.rate),
    }
}

/// 1 − Φ(x), for the expected power.
fn sf(x: f64) -> f64 {
    // Abramowitz & Stegun 26.2.17, |error| < 7.5e-8.
    let t = 1.0 / (1.0 + 0.231_641_9 * x.abs());
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    let q = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() * poly;
    if x >= 0.0 {
        q
    } else {
        1.0 - q
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let visits = 4;
    println!(
        "{seeds} simulated experiments per row, {visits} lists per user, looks every 200 lists"
    );
    println!();
    println!("| arms | users | lists | CTR control | CTR candidate | expected power | z-test at the end | sequential, any look | guard rail stops candidate | interleaving |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (label, p1) in [("good vs degraded", 0.5), ("A/A (equal)", 0.6)] {
        for users in [500usize, 1000, 2000] {
            let runs: Vec<Run> = (0..seeds).map(|s| run(s, users, visits, p1)).collect();
            let rate = |f: &dyn Fn(&Run) -> bool| {
                runs.iter().filter(|r| f(r)).count() as f64 / runs.len() as f64
            };
            let c0 = runs.iter().map(|r| r.ctr.0).sum::<f64>() / runs.len() as f64;
            let c1 = runs.iter().map(|r| r.ctr.1).sum::<f64>() / runs.len() as f64;
            // Normal-approximation power of the two-sided 5% test at these CTRs and sizes.
            let half = (users * visits) as f64 / 2.0;
            let se = (c0 * (1.0 - c0) / half + c1 * (1.0 - c1) / half).sqrt();
            let power = if (c0 - c1).abs() < 1e-9 {
                0.05
            } else {
                sf(1.959_964 - (c0 - c1).abs() / se) + sf(1.959_964 + (c0 - c1).abs() / se)
            };
            println!(
                "| {label} | {users} | {} | {c0:.4} | {c1:.4} | {power:.2} | {:.3} | {:.3} | {:.3} | {:.3} |",
                users * visits,
                rate(&|r| r.fixed),
                rate(&|r| r.sequential),
                rate(&|r| r.guard),
                rate(&|r| r.interleaved),
            );
        }
    }
}
