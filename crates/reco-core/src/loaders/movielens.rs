//! MovieLens in its three distributed layouts: 100K (`u.data`), 1M/10M (`ratings.dat`) and
//! 20M/25M/latest (`ratings.csv`), with their movie and user files.

use std::path::Path;

use crate::dataset::Dataset;
use crate::error::Result;
use crate::features::{FeatureRow, FeatureTableBuilder};
use crate::loaders::builder::{DatasetBuilder, LoadOptions, UnknownIds};
use crate::loaders::delimited::{
    metadata_id, read_interactions, split_values, Entity, InteractionColumns,
};
use crate::loaders::text::{ColumnRef, Delimiter, RecordReader, TextFormat};

/// The 19 genres of MovieLens 100K, in the order of `u.item`'s flag columns.
pub const ML100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

fn positional() -> InteractionColumns {
    InteractionColumns {
        user: ColumnRef::Index(0),
        item: ColumnRef::Index(1),
        rating: Some(ColumnRef::Index(2)),
        timestamp: Some(ColumnRef::Index(3)),
        weight: None,
        event: None,
    }
}

fn fmt(delimiter: Delimiter, has_header: bool) -> TextFormat {
    TextFormat {
        delimiter,
        has_header,
    }
}

/// Year in a title such as `Toy Story (1995)`.
fn title_year(title: &str) -> f32 {
    // By characters, not bytes: titles hold accented letters.
    let chars: Vec<char> = title.trim_end().chars().collect();
    let n = chars.len();
    if n >= 6 && chars[n - 1] == ')' && chars[n - 6] == '(' {
        let y: String = chars[n - 5..n - 1].iter().collect();
        if let Ok(y) = y.parse::<u16>() {
            return y as f32;
        }
    }
    f32::NAN
}

/// Reads item rows `id, title, genres` through `row`, into a table with title, genres and year.
fn read_movies(
    b: &mut DatasetBuilder,
    path: &Path,
    format: &TextFormat,
    opts: &LoadOptions,
    parse: impl Fn(&RecordReader, &[String]) -> Result<(String, String, Vec<String>)>,
) -> Result<()> {
    let policy = opts.unknown_items.unwrap_or(UnknownIds::Add);
    let mut r = RecordReader::open(path, format)?;
    let mut meta =
        FeatureTableBuilder::new(true, vec!["genres".into()], vec!["year".into()], vec![]);
    let mut fields = Vec::new();
    while b.next_row(&mut r, &mut fields, opts)? {
        let (id, title, genres) = match r.check_width(&fields).and_then(|()| parse(&r, &fields)) {
            Ok(x) => x,
            Err(e) => {
                b.bad_row(opts, e)?;
                continue;
            }
        };
        match metadata_id(&mut b.items, &id, policy, Entity::Item, &r)? {
            Some(i) => meta.push(
                i,
                FeatureRow {
                    numeric: vec![title_year(&title)],
                    title: Some(title),
                    categorical: vec![genres],
                    text: vec![],
                },
            ),
            None => b.report.unknown_metadata_ids += 1,
        }
    }
    b.item_meta = Some(meta);
    Ok(())
}

/// Reads user rows with the given categorical and numeric columns.
fn read_users(
    b: &mut DatasetBuilder,
    path: &Path,
    format: &TextFormat,
    opts: &LoadOptions,
    categorical: &[(&str, usize)],
    numeric: &[(&str, usize)],
) -> Result<()> {
    let mut r = RecordReader::open(path, format)?;
    let mut meta = FeatureTableBuilder::new(
        false,
        categorical.iter().map(|c| c.0.to_string()).collect(),
        numeric.iter().map(|c| c.0.to_string()).collect(),
        vec![],
    );
    let mut fields = Vec::new();
    while b.next_row(&mut r, &mut fields, opts)? {
        let parsed = (|| -> Result<FeatureRow> {
            r.check_width(&fields)?;
            Ok(FeatureRow {
                categorical: categorical
                    .iter()
                    .map(|&(_, c)| Ok(vec![r.field(&fields, c)?.to_string()]))
                    .collect::<Result<_>>()?,
                numeric: numeric
                    .iter()
                    .map(|&(_, c)| r.float(&fields, c))
                    .collect::<Result<_>>()?,
                ..Default::default()
            })
        })();
        let row = match parsed {
            Ok(row) => row,
            Err(e) => {
                b.bad_row(opts, e)?;
                continue;
            }
        };
        let id = r.field(&fields, 0)?.to_string();
        match metadata_id(&mut b.users, &id, opts.unknown_users, Entity::User, &r)? {
            Some(u) => meta.push(u, row),
            None => b.report.unknown_metadata_ids += 1,
        }
    }
    b.user_meta = Some(meta);
    Ok(())
}

/// Warns that an optional file of a MovieLens directory is missing, and what is lost.
fn warn_if_absent(path: &Path, what: &str) {
    if !path.exists() {
        crate::warning::warn(format!(
            "{} is missing: items will have no {what} (content models and explanations need them)",
            path.display()
        ));
    }
}

/// Loads a MovieLens 100K directory: `u.data`, and `u.item` / `u.user` when present.
pub fn load_100k(dir: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let mut b = DatasetBuilder::new(true);
    read_interactions(
        &mut b,
        &dir.join("u.data"),
        &fmt(Delimiter::Whitespace, false),
        Some(&positional()),
        opts,
    )?;
    let items = dir.join("u.item");
    warn_if_absent(&items, "titles and genres");
    if items.exists() {
        read_movies(
            &mut b,
            &items,
            &fmt(Delimiter::Byte(b'|'), false),
            opts,
            |r, f| {
                let id = r.field(f, 0)?.to_string();
                let title = r.field(f, 1)?.to_string();
                let mut genres = Vec::new();
                for (g, name) in ML100K_GENRES.iter().enumerate() {
                    match r.field(f, 5 + g)? {
                        "1" => genres.push(name.to_string()),
                        "0" => {}
                        other => return Err(r.error(5 + g, other, "genre flag must be 0 or 1")),
                    }
                }
                Ok((id, title, genres))
            },
        )?;
    }
    let users = dir.join("u.user");
    if users.exists() {
        read_users(
            &mut b,
            &users,
            &fmt(Delimiter::Byte(b'|'), false),
            opts,
            &[("gender", 2), ("occupation", 3), ("zip", 4)],
            &[("age", 1)],
        )?;
    }
    b.finish("ml-100k", opts)
}

/// Loads a MovieLens 1M or 10M directory: `ratings.dat`, and `movies.dat` / `users.dat`.
pub fn load_dat(dir: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let dcolon = || fmt(Delimiter::Str("::".into()), false);
    let mut b = DatasetBuilder::new(true);
    read_interactions(
        &mut b,
        &dir.join("ratings.dat"),
        &dcolon(),
        Some(&positional()),
        opts,
    )?;
    let movies = dir.join("movies.dat");
    warn_if_absent(&movies, "titles and genres");
    if movies.exists() {
        read_movies(&mut b, &movies, &dcolon(), opts, |r, f| {
            Ok((
                r.field(f, 0)?.to_string(),
                r.field(f, 1)?.to_string(),
                split_values(r.field(f, 2)?, Some("|")),
            ))
        })?;
    }
    let users = dir.join("users.dat");
    if users.exists() {
        // 1M: UserID::Gender::Age::Occupation::Zip-code; the age is a band code, so categorical.
        read_users(
            &mut b,
            &users,
            &dcolon(),
            opts,
            &[("gender", 1), ("age", 2), ("occupation", 3), ("zip", 4)],
            &[],
        )?;
    }
    let name = dir
        .file_name()
        .map_or("movielens".into(), |n| n.to_string_lossy().into_owned());
    b.finish(&name, opts)
}

/// Loads a MovieLens 20M/25M/latest directory: `ratings.csv` and `movies.csv`.
pub fn load_csv(dir: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let mut b = DatasetBuilder::new(true);
    let cols = InteractionColumns {
        user: ColumnRef::Name("userId".into()),
        item: ColumnRef::Name("movieId".into()),
        rating: Some(ColumnRef::Name("rating".into())),
        timestamp: Some(ColumnRef::Name("timestamp".into())),
        weight: None,
        event: None,
    };
    read_interactions(
        &mut b,
        &dir.join("ratings.csv"),
        &TextFormat::csv(),
        Some(&cols),
        opts,
    )?;
    let movies = dir.join("movies.csv");
    warn_if_absent(&movies, "titles and genres");
    if movies.exists() {
        read_movies(&mut b, &movies, &TextFormat::csv(), opts, |r, f| {
            Ok((
                r.field(f, 0)?.to_string(),
                r.field(f, 1)?.to_string(),
                split_values(r.field(f, 2)?, Some("|")),
            ))
        })?;
    }
    let name = dir
        .file_name()
        .map_or("movielens".into(), |n| n.to_string_lossy().into_owned());
    b.finish(&name, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn title_years() {
        assert_eq!(title_year("Toy Story (1995)"), 1995.0);
        assert!(title_year("Untitled").is_nan());
        assert!(title_year("Amélie (Amélie)").is_nan());
        assert_eq!(title_year("Amélie (2001)"), 2001.0);
    }

    #[test]
    fn loads_a_small_100k_layout() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("u.data"),
            "1\t10\t5\t100\n2\t10\t3\t50\n1\t20\t4\t90\n",
        )
        .unwrap();
        let flags = |g: usize| {
            (0..19)
                .map(|k| if k == g { "1" } else { "0" })
                .collect::<Vec<_>>()
                .join("|")
        };
        fs::write(
            d.path().join("u.item"),
            format!("10|Heat (1995)|01-Jan-1995||http://x|{}\n20|Caf\u{e9} (1990)|01-Jan-1990||http://y|{}\n30|Cold (2000)|||x|{}\n", flags(6), flags(5), flags(8)),
        )
        .unwrap();
        fs::write(
            d.path().join("u.user"),
            "1|24|M|technician|85711\n2|53|F|other|94043\n",
        )
        .unwrap();
        let ds = load_100k(d.path(), &LoadOptions::default()).unwrap();
        assert_eq!(ds.n_users(), 2);
        assert_eq!(ds.n_items(), 3, "catalogue items are added as cold items");
        assert_eq!(ds.interactions.nnz(), 3);
        let f = ds.item_features.as_ref().unwrap();
        assert_eq!(f.title(0), Some("Heat (1995)"));
        assert_eq!(f.category_label(0), "Crime");
        assert_eq!(f.numeric[0].values[1], 1990.0);
        let u = ds.user_features.as_ref().unwrap();
        assert_eq!(
            u.categorical("occupation")
                .unwrap()
                .vocab
                .id(u.categorical("occupation").unwrap().of(1)[0]),
            "other"
        );
        assert_eq!(u.numeric[0].values[0], 24.0);
    }

    #[test]
    fn loads_dat_and_csv_layouts() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("ratings.dat"),
            "1::1193::5::978300760\n1::661::3::978302109\n",
        )
        .unwrap();
        fs::write(d.path().join("movies.dat"), "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's|Musical\n").unwrap();
        let ds = load_dat(d.path(), &LoadOptions::default()).unwrap();
        assert_eq!(
            ds.item_features.as_ref().unwrap().category_label(1),
            "Animation|Children's|Musical"
        );

        let c = tempfile::tempdir().unwrap();
        fs::write(
            c.path().join("ratings.csv"),
            "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,3.5,1112484676\n",
        )
        .unwrap();
        fs::write(c.path().join("movies.csv"), "movieId,title,genres\n2,\"Jumanji, The (1995)\",Adventure|Children\n29,x,(no genres listed)\n").unwrap();
        let ds = load_csv(c.path(), &LoadOptions::default()).unwrap();
        let f = ds.item_features.as_ref().unwrap();
        assert_eq!(f.title(0), Some("Jumanji, The (1995)"));
        assert_eq!(f.category_label(1), "");
        assert_eq!(ds.interactions.get(0, 0), Some(3.5));
    }
}
