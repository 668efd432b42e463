//! The two-tower model's row-sparse embedding tables: which tables they are, and batches whose
//! tokens are numbered by a batch's gathered rows.

use candle_core::Var;

use reco_core::Result;

use super::TwoTowerParams;
use crate::bags::{batch, batch_mapped, Batch};
use crate::optim::SparseTable;

/// Where each tower's embedding tables are among the row-sparse tables of a fit (all None when
/// `sparse_updates` is off).
pub(super) struct Slots {
    pub user: Option<usize>,
    pub recent: Option<usize>,
    pub item: Option<usize>,
}

impl Slots {
    /// The row-sparse tables of `vars` (the towers' token and recent-item tables) and where they
    /// are.
    pub fn of(p: &TwoTowerParams, vars: &[(String, Var)]) -> Result<(Vec<SparseTable>, Slots)> {
        let mut tables = Vec::new();
        let mut slots = Slots {
            user: None,
            recent: None,
            item: None,
        };
        if !p.sparse_updates {
            return Ok((tables, slots));
        }
        for (name, var) in vars {
            let slot = match name.as_str() {
                "user.tokens" => &mut slots.user,
                "user.recent" => &mut slots.recent,
                "item.tokens" => &mut slots.item,
                _ => continue,
            };
            *slot = Some(tables.len());
            tables.push(SparseTable::new(var.clone())?);
        }
        Ok((tables, slots))
    }
}

/// A batch of bags, its tokens numbered by the batch's rows of table `slot` when that table is
/// row-sparse.
pub(super) fn bag_batch<'a>(
    sparse: &mut [SparseTable],
    slot: Option<usize>,
    rows: impl ExactSizeIterator<Item = ((&'a [u32], &'a [f32]), Option<u32>)> + Clone,
) -> Batch {
    match slot {
        Some(k) => {
            let table = &mut sparse[k];
            batch_mapped(rows, |t| table.local(t))
        }
        None => batch(rows),
    }
}
