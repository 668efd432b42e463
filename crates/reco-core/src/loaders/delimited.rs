//! Generic delimited-text loaders: interactions, item/user metadata and sessions, with columns
//! chosen by header name or position.

use std::path::Path;

use crate::error::{Error, Result};
use crate::features::{FeatureRow, FeatureTableBuilder};
use crate::ids::IdMap;
use crate::loaders::builder::{DatasetBuilder, LoadOptions, UnknownIds};
use crate::loaders::text::{ColumnRef, RecordReader, TextFormat};

/// Which columns of an interaction file hold what.
#[derive(Clone, Debug)]
pub struct InteractionColumns {
    /// User id column.
    pub user: ColumnRef,
    /// Item id column.
    pub item: ColumnRef,
    /// Rating column (explicit feedback).
    pub rating: Option<ColumnRef>,
    /// Timestamp column (integer or decimal seconds).
    pub timestamp: Option<ColumnRef>,
    /// Weight column, multiplied into the value.
    pub weight: Option<ColumnRef>,
    /// Event type column, mapped through the event weights.
    pub event: Option<ColumnRef>,
}

impl InteractionColumns {
    /// Columns guessed from a header: `user`/`userId`/`user_id`, `item`/`movieId`/`item_id`, and so
    /// on; without a header, positions 1–4 are user, item, rating, timestamp.
    pub fn guess(header: &[String]) -> Self {
        if header.is_empty() {
            return InteractionColumns {
                user: ColumnRef::Index(0),
                item: ColumnRef::Index(1),
                rating: Some(ColumnRef::Index(2)),
                timestamp: Some(ColumnRef::Index(3)),
                weight: None,
                event: None,
            };
        }
        let find = |cands: &[&str]| {
            header
                .iter()
                .find(|h| {
                    let base = h.split(':').next().unwrap_or(h).to_ascii_lowercase();
                    cands.contains(&base.as_str())
                })
                .map(|h| ColumnRef::Name(h.clone()))
        };
        InteractionColumns {
            user: find(&[
                "user",
                "userid",
                "user_id",
                "uid",
                "visitorid",
                "customer_id",
            ])
            .unwrap_or(ColumnRef::Name("user".into())),
            item: find(&[
                "item",
                "itemid",
                "item_id",
                "movieid",
                "movie_id",
                "iid",
                "product_id",
            ])
            .unwrap_or(ColumnRef::Name("item".into())),
            rating: find(&["rating", "score", "stars"]),
            timestamp: find(&["timestamp", "time", "ts", "datetime"]),
            weight: find(&["weight", "count", "quantity"]),
            event: find(&["event", "event_type", "action"]),
        }
    }
}

/// Reads an interaction file into `b`.
///
/// The value of a row is rating × weight × event weight, each factor 1 when absent. With a
/// threshold, rows rated below it are dropped and the others become positives of weight 1.
pub fn read_interactions(
    b: &mut DatasetBuilder,
    path: &Path,
    format: &TextFormat,
    cols: Option<&InteractionColumns>,
    opts: &LoadOptions,
) -> Result<()> {
    let mut r = RecordReader::open(path, format)?;
    let guessed;
    let positional_guess = cols.is_none() && r.header.is_empty();
    let cols = match cols {
        Some(c) => c,
        None => {
            guessed = InteractionColumns::guess(&r.header);
            &guessed
        }
    };
    if opts.threshold.is_some() && cols.rating.is_none() {
        return Err(Error::param(
            "threshold",
            format!("{} has no rating column to threshold", path.display()),
        ));
    }
    let resolve = |c: &Option<ColumnRef>| c.as_ref().map(|c| r.resolve(c)).transpose();
    let uc = r.resolve(&cols.user)?;
    let ic = r.resolve(&cols.item)?;
    let mut rc = resolve(&cols.rating)?;
    let wc = resolve(&cols.weight)?;
    let ec = resolve(&cols.event)?;
    let mut tc = resolve(&cols.timestamp)?;
    let mut fields = Vec::new();
    let mut have = b.next_row(&mut r, &mut fields, opts)?;
    // A header-less file read by position may have no rating or timestamp column: the first
    // row's width tells.
    if positional_guess && have {
        if fields.len() < 4 {
            tc = None;
        }
        if fields.len() < 3 {
            rc = None;
        }
    }
    if ec.is_some() && opts.event_weights.is_empty() {
        return Err(Error::param(
            "event-weights",
            "the file has an event column; give weights such as view=1,cart=3,buy=5",
        ));
    }
    if rc.is_some() {
        b.has_ratings = true;
    }
    let with_ts = b.triplets.timestamps.is_some();
    if tc.is_some() != with_ts && b.triplets.is_empty() {
        b.triplets = crate::interactions::Triplets::new(tc.is_some());
    } else if tc.is_some() != with_ts {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: "some interaction files have timestamps and others do not".into(),
        });
    }

    let mut rows = 0usize;
    // Logs list a user's rows together, so remembering the last id skips most hash lookups.
    let mut last_user: (String, u32) = (String::new(), u32::MAX);
    while have {
        rows += 1;
        let parsed = (|| -> Result<Option<(f32, Option<i64>)>> {
            r.check_width(&fields)?;
            for c in [uc, ic] {
                if r.field(&fields, c)?.is_empty() {
                    return Err(r.error(c, "", "empty id"));
                }
            }
            let ts = tc.map(|c| r.timestamp(&fields, c)).transpose()?;
            let mut value = 1.0f32;
            if let Some(c) = rc {
                let rating = r.float(&fields, c)?;
                if let Some(t) = opts.threshold {
                    if rating < t {
                        return Ok(None);
                    }
                } else {
                    value *= rating;
                }
            }
            if let Some(c) = wc {
                value *= r.float(&fields, c)?;
            }
            if let Some(c) = ec {
                let ev = r.field(&fields, c)?;
                let w = opts
                    .event_weights
                    .iter()
                    .find(|(k, _)| k == ev)
                    .map(|(_, w)| *w)
                    .ok_or_else(|| r.error(c, ev, "event type has no weight"))?;
                value *= w;
            }
            Ok(Some((value, ts)))
        })();
        match parsed {
            Ok(Some((value, ts))) => {
                let user = fields[uc].trim();
                let u = if user == last_user.0 {
                    last_user.1
                } else {
                    let u = b.users.get_or_insert(user);
                    last_user = (user.to_string(), u);
                    u
                };
                let i = b.items.get_or_insert(fields[ic].trim());
                b.triplets.push(u, i, value, ts);
            }
            Ok(None) => b.report.below_threshold += 1,
            Err(e) => b.bad_row(opts, e)?,
        }
        have = b.next_row(&mut r, &mut fields, opts)?;
    }
    if rows == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Which columns of a metadata file hold what.
#[derive(Clone, Debug, Default)]
pub struct MetadataColumns {
    /// Id column (user or item id).
    pub id: Option<ColumnRef>,
    /// Title column (items).
    pub title: Option<ColumnRef>,
    /// Categorical columns, each with the separator of multiple values (e.g. `|` for genres).
    pub categorical: Vec<(ColumnRef, Option<String>)>,
    /// Numeric columns; an empty cell is missing, anything else must be a finite number.
    pub numeric: Vec<ColumnRef>,
    /// Free-text columns.
    pub text: Vec<ColumnRef>,
}

/// Whether metadata describes items or users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    /// Item metadata.
    Item,
    /// User metadata.
    User,
}

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Entity::Item => "item",
            Entity::User => "user",
        }
    }
}

/// Resolves the id of a metadata row: known, added, skipped (`None`) or an error.
pub(crate) fn metadata_id(
    ids: &mut IdMap,
    id: &str,
    policy: UnknownIds,
    entity: Entity,
    r: &RecordReader,
) -> Result<Option<u32>> {
    if let Some(i) = ids.get(id) {
        return Ok(Some(i));
    }
    match policy {
        UnknownIds::Add => Ok(Some(ids.get_or_insert(id))),
        UnknownIds::Skip => Ok(None),
        UnknownIds::Error => Err(Error::UnknownId {
            path: r.path().to_path_buf(),
            line: r.line(),
            kind: entity.name(),
            id: id.to_string(),
        }),
    }
}

/// Reads a metadata file into `b`'s item or user metadata.
pub fn read_metadata(
    b: &mut DatasetBuilder,
    path: &Path,
    format: &TextFormat,
    cols: &MetadataColumns,
    entity: Entity,
    policy: UnknownIds,
    opts: &LoadOptions,
) -> Result<()> {
    let mut r = RecordReader::open(path, format)?;
    let idc = r.resolve(cols.id.as_ref().unwrap_or(&ColumnRef::Index(0)))?;
    let tc = cols.title.as_ref().map(|c| r.resolve(c)).transpose()?;
    let cc = cols
        .categorical
        .iter()
        .map(|(c, sep)| Ok((r.resolve(c)?, sep.clone())))
        .collect::<Result<Vec<_>>>()?;
    let nc = cols
        .numeric
        .iter()
        .map(|c| r.resolve(c))
        .collect::<Result<Vec<_>>>()?;
    let xc = cols
        .text
        .iter()
        .map(|c| r.resolve(c))
        .collect::<Result<Vec<_>>>()?;
    let slot = match entity {
        Entity::Item => &mut b.item_meta,
        Entity::User => &mut b.user_meta,
    };
    if slot.is_none() {
        *slot = Some(FeatureTableBuilder::new(
            tc.is_some(),
            cc.iter().map(|(c, _)| r.column_name(*c)).collect(),
            nc.iter().map(|c| r.column_name(*c)).collect(),
            xc.iter().map(|c| r.column_name(*c)).collect(),
        ));
    }
    let mut fields = Vec::new();
    let mut rows = 0usize;
    while b.next_row(&mut r, &mut fields, opts)? {
        rows += 1;
        let parsed = (|| -> Result<FeatureRow> {
            r.check_width(&fields)?;
            Ok(FeatureRow {
                title: tc
                    .map(|c| r.field(&fields, c).map(str::to_string))
                    .transpose()?,
                categorical: cc
                    .iter()
                    .map(|(c, sep)| {
                        let s = r.field(&fields, *c)?;
                        Ok(split_values(s, sep.as_deref()))
                    })
                    .collect::<Result<_>>()?,
                numeric: nc
                    .iter()
                    .map(|&c| {
                        if r.field(&fields, c)?.is_empty() {
                            Ok(f32::NAN)
                        } else {
                            r.float(&fields, c)
                        }
                    })
                    .collect::<Result<_>>()?,
                text: xc
                    .iter()
                    .map(|&c| r.field(&fields, c).map(str::to_string))
                    .collect::<Result<_>>()?,
            })
        })();
        let row = match parsed {
            Ok(row) => row,
            Err(e) => {
                b.bad_row(opts, e)?;
                continue;
            }
        };
        let id = r.field(&fields, idc)?.to_string();
        let ids = match entity {
            Entity::Item => &mut b.items,
            Entity::User => &mut b.users,
        };
        match metadata_id(ids, &id, policy, entity, &r)? {
            Some(e) => {
                let slot = match entity {
                    Entity::Item => &mut b.item_meta,
                    Entity::User => &mut b.user_meta,
                };
                if let Some(meta) = slot.as_mut() {
                    meta.push(e, row);
                }
            }
            None => b.report.unknown_metadata_ids += 1,
        }
    }
    if rows == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Splits a multi-valued cell; empty values and `(no genres listed)`-style markers are dropped.
pub(crate) fn split_values(s: &str, sep: Option<&str>) -> Vec<String> {
    let parts: Vec<&str> = match sep {
        Some(" ") => s.split_whitespace().collect(),
        Some(sep) => s.split(sep).collect(),
        None => vec![s],
    };
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "(no genres listed)")
        .map(str::to_string)
        .collect()
}

/// Which columns of a sessions file hold what.
#[derive(Clone, Debug)]
pub struct SessionColumns {
    /// Session id.
    pub session: ColumnRef,
    /// Item id.
    pub item: ColumnRef,
    /// Position or timestamp ordering the items; file order when absent.
    pub order: Option<ColumnRef>,
}

/// Reads a sessions file (session, item, order) into `b`; items unknown to the interactions are
/// added to the catalogue, since a view is evidence the item exists.
pub fn read_sessions(
    b: &mut DatasetBuilder,
    path: &Path,
    format: &TextFormat,
    cols: &SessionColumns,
    opts: &LoadOptions,
) -> Result<()> {
    let mut r = RecordReader::open(path, format)?;
    let sc = r.resolve(&cols.session)?;
    let ic = r.resolve(&cols.item)?;
    let oc = cols.order.as_ref().map(|c| r.resolve(c)).transpose()?;
    let (mut ids, mut rows) = b.sessions.take().unwrap_or_default();
    let mut fields = Vec::new();
    let mut n = 0usize;
    while b.next_row(&mut r, &mut fields, opts)? {
        n += 1;
        let parsed = (|| -> Result<(String, String, f64)> {
            r.check_width(&fields)?;
            let order = match oc {
                Some(c) => {
                    let s = r.field(&fields, c)?;
                    s.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| r.error(c, s, "not a finite number"))?
                }
                None => n as f64,
            };
            Ok((
                r.field(&fields, sc)?.to_string(),
                r.field(&fields, ic)?.to_string(),
                order,
            ))
        })();
        match parsed {
            Ok((s, i, order)) => {
                let s = ids.get_or_insert(&s);
                let i = b.items.get_or_insert(&i);
                rows.push((s, order, i));
            }
            Err(e) => b.bad_row(opts, e)?,
        }
    }
    if n == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    b.sessions = Some((ids, rows));
    Ok(())
}
