//! RecBole atomic files: `NAME.inter`, `NAME.item`, `NAME.user`, tab-separated, with headers of
//! the form `name:type` where type is `token`, `token_seq`, `float` or `float_seq`.
//!
//! Mapping to reco's metadata: a field called `title`/`movie_title`/`name` is the title; a
//! `token_seq` field called `description`, `text`, `overview`, `plot`, `summary` or `review` is
//! text; other `token`/`token_seq` fields are categorical (a sequence is multi-valued, split on
//! spaces); `float` is numeric; `float_seq` becomes numeric fields `name[0]`, `name[1]`, ….
//! reco also reads (and its generator writes) `NAME.session` with `session_id:token`,
//! `item_id:token` and `position:float`.

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::features::{FeatureRow, FeatureTableBuilder};
use crate::loaders::builder::{DatasetBuilder, LoadOptions, UnknownIds};
use crate::loaders::delimited::{
    metadata_id, read_interactions, read_sessions, Entity, InteractionColumns, SessionColumns,
};
use crate::loaders::text::{ColumnRef, RecordReader, TextFormat};

const TITLE_NAMES: [&str; 3] = ["title", "movie_title", "name"];
const TEXT_NAMES: [&str; 6] = [
    "description",
    "text",
    "overview",
    "plot",
    "summary",
    "review",
];

/// The atomic files of dataset `name` in `dir`.
pub fn files(dir: &Path) -> Result<(String, PathBuf)> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut inter: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "inter"))
        .collect();
    inter.sort();
    match inter.as_slice() {
        [one] => {
            let stem = one
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((stem, one.clone()))
        }
        [] => Err(Error::Format {
            path: dir.to_path_buf(),
            message: "no .inter file".into(),
        }),
        _ => Err(Error::Format {
            path: dir.to_path_buf(),
            message: format!(
                "{} .inter files; keep one dataset per directory",
                inter.len()
            ),
        }),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Title,
    Categorical { seq: bool },
    Numeric,
    NumericSeq,
    Text,
}

fn kind_of(r: &RecordReader, col: usize) -> Result<(String, Kind)> {
    let h = &r.header[col];
    let (name, ty) = h.split_once(':').ok_or_else(|| Error::Format {
        path: r.path().to_path_buf(),
        message: format!("header field {h:?} is not name:type"),
    })?;
    let kind = match ty {
        _ if TITLE_NAMES.contains(&name) => Kind::Title,
        "token_seq" if TEXT_NAMES.contains(&name) => Kind::Text,
        "token" => Kind::Categorical { seq: false },
        "token_seq" => Kind::Categorical { seq: true },
        "float" => Kind::Numeric,
        "float_seq" => Kind::NumericSeq,
        other => {
            return Err(Error::Format {
                path: r.path().to_path_buf(),
                message: format!(
                "field {name:?} has unknown type {other:?} (token, token_seq, float, float_seq)"
            ),
            })
        }
    };
    Ok((name.to_string(), kind))
}

fn read_features(
    b: &mut DatasetBuilder,
    path: &Path,
    entity: Entity,
    policy: UnknownIds,
    opts: &LoadOptions,
) -> Result<()> {
    let mut r = RecordReader::open(path, &TextFormat::tsv())?;
    let kinds = (1..r.header.len())
        .map(|c| kind_of(&r, c).map(|k| (c, k)))
        .collect::<Result<Vec<_>>>()?;
    let pick = |want: fn(Kind) -> bool| {
        kinds
            .iter()
            .filter(|(_, (_, k))| want(*k))
            .map(|(c, (n, _))| (*c, n.clone()))
            .collect::<Vec<_>>()
    };
    let cats = pick(|k| matches!(k, Kind::Categorical { .. }));
    let nums = pick(|k| k == Kind::Numeric);
    let seqs = pick(|k| k == Kind::NumericSeq);
    let texts = pick(|k| k == Kind::Text);
    let title = kinds
        .iter()
        .find(|(_, (_, k))| *k == Kind::Title)
        .map(|(c, _)| *c);
    let mut staged: Vec<(u32, FeatureRow, Vec<Vec<f32>>)> = Vec::new();
    let mut fields = Vec::new();
    let mut n = 0usize;
    while b.next_row(&mut r, &mut fields, opts)? {
        n += 1;
        let parsed = (|| -> Result<(FeatureRow, Vec<Vec<f32>>)> {
            r.check_width(&fields)?;
            let row = FeatureRow {
                title: title
                    .map(|c| r.field(&fields, c).map(str::to_string))
                    .transpose()?,
                categorical: cats
                    .iter()
                    .map(|(c, _)| {
                        let s = r.field(&fields, *c)?;
                        let seq = matches!(kinds[c - 1].1 .1, Kind::Categorical { seq: true });
                        Ok(if seq {
                            s.split_whitespace().map(str::to_string).collect()
                        } else if s.is_empty() {
                            vec![]
                        } else {
                            vec![s.to_string()]
                        })
                    })
                    .collect::<Result<_>>()?,
                numeric: nums
                    .iter()
                    .map(|(c, _)| {
                        if r.field(&fields, *c)?.is_empty() {
                            Ok(f32::NAN)
                        } else {
                            r.float(&fields, *c)
                        }
                    })
                    .collect::<Result<_>>()?,
                text: texts
                    .iter()
                    .map(|(c, _)| r.field(&fields, *c).map(str::to_string))
                    .collect::<Result<_>>()?,
            };
            let seq_vals = seqs
                .iter()
                .map(|(c, _)| {
                    r.field(&fields, *c)?
                        .split_whitespace()
                        .map(|s| {
                            s.parse::<f32>()
                                .ok()
                                .filter(|v| v.is_finite())
                                .ok_or_else(|| r.error(*c, s, "not a finite number"))
                        })
                        .collect::<Result<Vec<f32>>>()
                })
                .collect::<Result<_>>()?;
            Ok((row, seq_vals))
        })();
        let (row, seq_vals) = match parsed {
            Ok(x) => x,
            Err(e) => {
                b.bad_row(opts, e)?;
                continue;
            }
        };
        let id = r.field(&fields, 0)?.to_string();
        let ids = if entity == Entity::Item {
            &mut b.items
        } else {
            &mut b.users
        };
        match metadata_id(ids, &id, policy, entity, &r)? {
            Some(e) => staged.push((e, row, seq_vals)),
            None => b.report.unknown_metadata_ids += 1,
        }
    }
    if n == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let widths: Vec<usize> = (0..seqs.len())
        .map(|s| staged.iter().map(|x| x.2[s].len()).max().unwrap_or(0))
        .collect();
    let mut num_names: Vec<String> = nums.iter().map(|x| x.1.clone()).collect();
    for ((_, name), &w) in seqs.iter().zip(&widths) {
        num_names.extend((0..w).map(|j| format!("{name}[{j}]")));
    }
    let mut meta = FeatureTableBuilder::new(
        title.is_some(),
        cats.iter().map(|x| x.1.clone()).collect(),
        num_names,
        texts.iter().map(|x| x.1.clone()).collect(),
    );
    for (e, mut row, seq_vals) in staged {
        for (vals, &w) in seq_vals.iter().zip(&widths) {
            row.numeric
                .extend((0..w).map(|j| vals.get(j).copied().unwrap_or(f32::NAN)));
        }
        meta.push(e, row);
    }
    match entity {
        Entity::Item => b.item_meta = Some(meta),
        Entity::User => b.user_meta = Some(meta),
    }
    Ok(())
}

/// Checks the `name:type` annotations of an interaction file: every field has a known type,
/// ids are tokens and ratings, timestamps and weights are floats, as RecBole reads them.
fn check_inter_types(path: &Path, header: &[String]) -> Result<()> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    for h in header {
        let (name, ty) = h.split_once(':').ok_or_else(|| {
            bad(format!(
                "header field {h:?} is not name:type (e.g. user_id:token)"
            ))
        })?;
        if !matches!(ty, "token" | "token_seq" | "float" | "float_seq") {
            return Err(bad(format!(
                "field {name:?} has unknown type {ty:?} (token, token_seq, float, float_seq)"
            )));
        }
        let want = match name {
            "user_id" | "item_id" => "token",
            "rating" | "timestamp" | "weight" => "float",
            _ => continue,
        };
        if ty != want {
            return Err(bad(format!(
                "field {name:?} is declared {ty:?}; reco (like RecBole) reads {name} as \
                 {want:?}: change the header to {name}:{want}"
            )));
        }
    }
    Ok(())
}

/// Loads a directory of RecBole atomic files.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let (name, inter) = files(dir)?;
    let header = RecordReader::open(&inter, &TextFormat::tsv())?.header;
    check_inter_types(&inter, &header)?;
    let find = |names: &[&str]| {
        header
            .iter()
            .find(|h| names.contains(&h.split(':').next().unwrap_or("")))
            .map(|h| ColumnRef::Name(h.clone()))
    };
    let cols = InteractionColumns {
        user: find(&["user_id"]).unwrap_or(ColumnRef::Name("user_id".into())),
        item: find(&["item_id"]).unwrap_or(ColumnRef::Name("item_id".into())),
        rating: find(&["rating"]),
        timestamp: find(&["timestamp"]),
        weight: find(&["weight"]),
        event: None,
    };
    let mut b = DatasetBuilder::new(cols.timestamp.is_some());
    read_interactions(&mut b, &inter, &TextFormat::tsv(), Some(&cols), opts)?;
    let item = dir.join(format!("{name}.item"));
    if item.exists() {
        read_features(
            &mut b,
            &item,
            Entity::Item,
            opts.unknown_items.unwrap_or(UnknownIds::Add),
            opts,
        )?;
    }
    let user = dir.join(format!("{name}.user"));
    if user.exists() {
        read_features(&mut b, &user, Entity::User, opts.unknown_users, opts)?;
    }
    let session = dir.join(format!("{name}.session"));
    if session.exists() {
        let cols = SessionColumns {
            session: ColumnRef::Name("session_id:token".into()),
            item: ColumnRef::Name("item_id:token".into()),
            order: Some(ColumnRef::Name("position:float".into())),
        };
        read_sessions(&mut b, &session, &TextFormat::tsv(), &cols, opts)?;
    }
    b.finish(&name, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn reads_atomic_files_with_every_type() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("toy.inter"), "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\ta\t4\t881250949.0\n2\tb\t2\t881250950\n").unwrap();
        fs::write(
            d.path().join("toy.item"),
            "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tdescription:token_seq\tprice:float\temb:float_seq\na\tToy Story\t1995\tAnimation Comedy\ta toy tale\t9.5\t1 2\nb\tHeat\t1995\tCrime\theist\t\t3\n",
        )
        .unwrap();
        fs::write(
            d.path().join("toy.user"),
            "user_id:token\tage:token\tgender:token\n1\t24\tM\n2\t53\tF\n",
        )
        .unwrap();
        fs::write(
            d.path().join("toy.session"),
            "session_id:token\titem_id:token\tposition:float\ns1\tb\t2\ns1\ta\t1\n",
        )
        .unwrap();
        let ds = load(d.path(), &LoadOptions::default()).unwrap();
        assert_eq!(ds.name, "toy");
        assert_eq!(
            ds.interactions.timestamps().unwrap(),
            &[881250949, 881250950]
        );
        let f = ds.item_features.as_ref().unwrap();
        assert_eq!(f.title(0), Some("Toy Story"));
        assert_eq!(f.categorical("class").unwrap().of(0).len(), 2);
        assert_eq!(f.text[0].values[1], "heist");
        assert_eq!(f.numeric[0].name, "price");
        assert!(f.numeric[0].values[1].is_nan());
        assert_eq!(f.numeric[2].name, "emb[1]");
        assert_eq!(f.numeric[2].values[0], 2.0);
        assert!(f.numeric[2].values[1].is_nan());
        assert_eq!(ds.sessions.as_ref().unwrap().session(0), &[0, 1]);
    }

    #[test]
    fn bad_type_names_the_field() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("x.inter"),
            "user_id:token\titem_id:token\n1\ta\n",
        )
        .unwrap();
        fs::write(
            d.path().join("x.item"),
            "item_id:token\tprice:money\na\t3\n",
        )
        .unwrap();
        let e = load(d.path(), &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("price") && e.contains("money"), "{e}");
    }
}
