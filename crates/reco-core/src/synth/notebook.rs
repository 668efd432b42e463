//! The notebook preset: the classic demo generator's semantics.

use super::*;

/// Parameters of the notebook preset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotebookConfig {
    /// Users (30).
    pub users: usize,
    /// Items (60).
    pub items: usize,
    /// Categories (6, at most 6: one per keyword list).
    pub categories: usize,
    /// Ratings per user (12), 70% from the preferred category.
    pub ratings_per_user: usize,
    /// Views per session (8).
    pub session_len: usize,
    /// Seed (42).
    pub seed: u64,
}

impl Default for NotebookConfig {
    fn default() -> Self {
        NotebookConfig {
            users: 30,
            items: 60,
            categories: 6,
            ratings_per_user: 12,
            session_len: 8,
            seed: 42,
        }
    }
}

/// The notebook's demo data: explicit ratings without timestamps, item titles, categories and
/// descriptions, one session per user.
pub fn notebook(c: &NotebookConfig) -> Result<Dataset> {
    if c.categories == 0 || c.categories > CATEGORY_WORDS.len() {
        return Err(Error::param(
            "categories",
            format!("must be in 1..=6, got {}", c.categories),
        ));
    }
    if c.users == 0 || c.items == 0 {
        return Err(Error::param("users", "users and items must be positive"));
    }
    let mut rng = rng_for(c.seed, 0);
    let item_cat: Vec<usize> = (0..c.items)
        .map(|_| rng.gen_range(0..c.categories))
        .collect();
    let user_pref: Vec<usize> = (0..c.users)
        .map(|_| rng.gen_range(0..c.categories))
        .collect();
    let mut meta = FeatureTableBuilder::new(
        true,
        vec!["category".into()],
        vec![],
        vec!["description".into()],
    );
    for (i, &cat) in item_cat.iter().enumerate() {
        let words: Vec<&str> = CATEGORY_WORDS[cat]
            .1
            .choose_multiple(&mut rng, 5)
            .copied()
            .collect();
        meta.push(
            i as u32,
            FeatureRow {
                title: Some(format!("Item_{i:02}_Category_{cat:02}")),
                categorical: vec![vec![cat.to_string()]],
                numeric: vec![],
                text: vec![words.join(" ")],
            },
        );
    }
    let noise = Normal::<f64>::new(0.0, 0.6).map_err(|e| Error::param("noise", e.to_string()))?;
    let mut t = Triplets::new(false);
    let n_pref = (c.ratings_per_user as f64 * 0.7) as usize;
    let n_other = c.ratings_per_user - n_pref;
    for (u, &pref) in user_pref.iter().enumerate() {
        let preferred: Vec<u32> = (0..c.items as u32)
            .filter(|&i| item_cat[i as usize] == pref)
            .collect();
        let other: Vec<u32> = (0..c.items as u32)
            .filter(|&i| item_cat[i as usize] != pref)
            .collect();
        let mut chosen: Vec<u32> = preferred
            .choose_multiple(&mut rng, n_pref.min(preferred.len()))
            .copied()
            .collect();
        chosen.extend(other.choose_multiple(&mut rng, n_other.min(other.len())));
        chosen.shuffle(&mut rng);
        for i in chosen {
            let base: f64 = if item_cat[i as usize] == pref {
                4.2
            } else {
                2.8
            };
            let r: f64 = (base + noise.sample(&mut rng)).clamp(1.0, 5.0);
            t.push(u as u32, i, ((r * 10.0).round() / 10.0) as f32, None);
        }
    }
    let mut sess = Vec::new();
    for (u, &pref) in user_pref.iter().enumerate() {
        let preferred: Vec<u32> = (0..c.items as u32)
            .filter(|&i| item_cat[i as usize] == pref)
            .collect();
        for k in 0..c.session_len {
            if let Some(&i) = preferred.choose(&mut rng) {
                sess.push((u as u32, k as f64, i));
            }
        }
    }
    let (m, _) = Interactions::from_triplets(&t, c.users, c.items, DuplicatePolicy::Last)?;
    Ok(Dataset {
        name: "notebook".into(),
        users: Arc::new(ids("", c.users)),
        items: Arc::new(ids("", c.items)),
        interactions: m,
        feedback: Feedback::Explicit,
        item_features: Some(Arc::new(meta.build(c.items))),
        user_features: None,
        sessions: Some(Arc::new(Sessions::from_rows(ids("s", c.users), sess))),
        report: Default::default(),
    })
}
