//! Seeding an empty store from a dataset the loaders read (`reco serve --data`, `--demo`):
//! every interaction becomes an event, item metadata becomes item rows.

use reco_core::{Dataset, Feedback};

use crate::config::Config;
use crate::error::{Result, ServeError};
use crate::store::{now, Batch, ItemRow, NewEvent, Store};

const EVENTS_PER_COMMIT: usize = 20_000;

/// The event type interactions are stored as: `rating` for explicit data, `view` otherwise.
pub fn seed_kind(feedback: Feedback) -> &'static str {
    match feedback {
        Feedback::Explicit => "rating",
        Feedback::Implicit => "view",
    }
}

/// Writes the dataset's interactions as events and its item metadata as items.
pub async fn seed(store: &Store, ds: &Dataset, cfg: &Config) -> Result<()> {
    let kind = seed_kind(ds.feedback);
    match cfg.feedback.types.get(kind) {
        Some(w) if *w > 0.0 => {}
        _ => {
            return Err(ServeError::Config(format!(
                "seeding stores interactions as {kind:?} events: give feedback.types.{kind} a positive weight"
            )))
        }
    }
    let t = now();
    let mut items: Vec<ItemRow> = Vec::with_capacity(ds.n_items());
    for i in 0..ds.n_items() as u32 {
        let (title, categories) = match &ds.item_features {
            Some(f) => (
                f.title(i).map(str::to_string),
                f.categorical
                    .iter()
                    .flat_map(|field| field.of(i).iter().map(|&v| field.vocab.id(v).to_string()))
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        items.push(ItemRow {
            id: ds.items.id(i).to_string(),
            title,
            categories,
            fields: Default::default(),
            timestamp: Some(0),
        });
    }
    for chunk in items.chunks(5_000) {
        store.upsert_items(chunk).await?;
    }
    let m = &ds.interactions;
    let ts = m.timestamps();
    let progress = crate::telemetry::LogProgress::new("seeding");
    let total = m.nnz() as u64;
    let mut written = 0u64;
    let mut batch: Vec<NewEvent> = Vec::with_capacity(EVENTS_PER_COMMIT);
    for u in 0..m.n_users() as u32 {
        let r = m.row_range(u);
        for p in r {
            let i = m.indices()[p];
            batch.push(NewEvent {
                user: ds.users.id(u).to_string(),
                item: ds.items.id(i).to_string(),
                kind: kind.to_string(),
                value: f64::from(m.values()[p]),
                timestamp: ts.map_or(t, |ts| ts[p]),
                recommendation: None,
            });
            if batch.len() == EVENTS_PER_COMMIT {
                store
                    .insert_batches(
                        &[Batch {
                            events: std::mem::take(&mut batch),
                            key: None,
                        }],
                        &[],
                    )
                    .await?;
                written += EVENTS_PER_COMMIT as u64;
                progress.report("events", written, total, None);
            }
        }
    }
    if !batch.is_empty() {
        store
            .insert_batches(
                &[Batch {
                    events: batch,
                    key: None,
                }],
                &[],
            )
            .await?;
    }
    progress.report("events", total, total, None);
    Ok(())
}
