//! The fuzz targets' bodies, one function per target, and their helpers: a scratch directory on
//! a memory file system, splitting one input into several files, and the checks each target
//! makes on what the code under test returns.
//!
//! `fuzz_targets/*.rs` call these functions under libFuzzer (`cargo fuzz`, see `bench/fuzz.sh`);
//! the workspace test `crates/reco-cli/tests/fuzz_corpus.rs` includes this file and replays the
//! saved corpus `fuzz/corpus/TARGET/*` through the same functions without instrumentation.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reco_ann::{Hnsw, VectorIndex};
use reco_core::artifact::Manifest;
use reco_core::loaders::{
    delimited, movielens, recbole, ColumnRef, DatasetBuilder, Delimiter, Entity, LoadOptions,
    MetadataColumns, SessionColumns, TextFormat, UnknownIds,
};
use reco_core::model::{Filter, Query};
use reco_core::DuplicatePolicy;
use reco_models::{ModelSpec, Shape};

/// The targets by name, as `fuzz/corpus/NAME` and `cargo fuzz run NAME` know them.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("delimited", delimited),
    ("movielens", movielens),
    ("recbole", recbole),
    ("spec_json", spec_json),
    ("spec_toml", spec_toml),
    ("artifact", artifact),
    ("hnsw", hnsw),
];

/// Separates the files packed into one fuzz input. Long and unlikely enough that ordinary
/// content does not contain it, short enough for the mutator to create and destroy it.
pub const SEPARATOR: &[u8] = b"\n--8<--\n";

/// Splits `data` at every [`SEPARATOR`].
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

/// A directory of this thread on `/dev/shm` (or the temporary directory where there is none),
/// so file-reading code runs at memory speed and parallel replays do not share files.
fn scratch() -> PathBuf {
    thread_local! {
        static DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    }
    DIR.with(|d| {
        d.borrow_mut()
            .get_or_insert_with(|| {
                let base = if Path::new("/dev/shm").is_dir() {
                    PathBuf::from("/dev/shm")
                } else {
                    std::env::temp_dir()
                };
                let thread = format!("{:?}", std::thread::current().id());
                let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
                base.join(format!("reco-fuzz-{}-{thread}", std::process::id()))
            })
            .clone()
    })
}

/// Empties the scratch directory and writes `files` (name, bytes) into it.
pub fn write_files(files: &[(&str, &[u8])]) -> PathBuf {
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("scratch file");
    }
    dir
}

/// Removes this thread's scratch directory (the replay test calls it when done).
pub fn clean_up() {
    let _ = std::fs::remove_dir_all(scratch());
}

/// Registers the model kinds of the neural and pipeline crates once, as the CLI does.
pub fn register_all() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        reco_neural::register().expect("register neural kinds");
        reco_pipeline::register().expect("register pipeline kinds");
    });
}

/// Warnings go to stderr in the CLI; here they would only slow the fuzzer down.
pub fn quiet<T>(f: impl FnOnce() -> T) -> T {
    reco_core::warning::capture(f).0
}

/// Checks what a loader returned: an error must have a message; a dataset must be internally
/// consistent (every index inside the id maps, every value finite).
pub fn check_dataset(result: reco_core::Result<reco_core::Dataset>) {
    match result {
        Err(e) => assert!(!e.to_string().is_empty(), "an error without a message"),
        Ok(d) => {
            let m = &d.interactions;
            assert_eq!(m.n_users(), d.users.len(), "user count");
            assert_eq!(m.n_items(), d.items.len(), "item count");
            for u in 0..m.n_users() as u32 {
                let (items, values) = (m.user_items(u), m.user_values(u));
                assert_eq!(items.len(), values.len());
                assert!(items.iter().all(|&i| (i as usize) < d.items.len()));
                assert!(
                    items.windows(2).all(|w| w[0] < w[1]),
                    "row sorted, no duplicates"
                );
                assert!(values.iter().all(|v| v.is_finite()), "finite values");
            }
        }
    }
}

/// The delimited reader and the three delimited loaders (interactions, item metadata, sessions).
/// The first byte chooses the delimiter, header, loader and load options; the rest is the file.
pub fn delimited(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let delimiter = match mode & 3 {
        0 => Delimiter::Byte(b','),
        1 => Delimiter::Byte(b'\t'),
        2 => Delimiter::Str("::".into()),
        _ => Delimiter::Whitespace,
    };
    let format = TextFormat {
        delimiter,
        has_header: mode & 4 == 0,
    };
    let opts = LoadOptions {
        duplicates: [DuplicatePolicy::Last, DuplicatePolicy::Sum][usize::from(mode >> 5 & 1)],
        skip_bad_rows: mode & 64 != 0,
        threshold: (mode & 128 != 0).then_some(3.0),
        ..LoadOptions::default()
    };
    let dir = write_files(&[("d.csv", body), ("i.csv", b"user,item\n1,a\n2,b\n")]);
    let path = dir.join("d.csv");
    quiet(|| match mode >> 3 & 3 {
        0 | 1 => check_dataset(reco_core::loaders::load(&path, Some(&format), None, &opts)),
        2 => {
            // The file as item metadata of a small interaction file.
            let mut b = DatasetBuilder::new(false);
            let base = LoadOptions::default();
            delimited::read_interactions(
                &mut b,
                &dir.join("i.csv"),
                &TextFormat::csv(),
                None,
                &base,
            )
            .expect("the fixed interaction file loads");
            let meta = MetadataColumns {
                id: Some(ColumnRef::Index(0)),
                title: Some(ColumnRef::Index(1)),
                categorical: vec![(ColumnRef::Index(2), Some("|".into()))],
                numeric: vec![ColumnRef::Index(3)],
                text: vec![ColumnRef::Index(4)],
            };
            let r = delimited::read_metadata(
                &mut b,
                &path,
                &format,
                &meta,
                Entity::Item,
                UnknownIds::Add,
                &opts,
            );
            if r.is_ok() {
                check_dataset(b.finish("d", &opts));
            }
        }
        _ => {
            let mut b = DatasetBuilder::new(false);
            let cols = SessionColumns {
                session: ColumnRef::Index(0),
                item: ColumnRef::Index(1),
                order: Some(ColumnRef::Index(2)),
            };
            if delimited::read_sessions(&mut b, &path, &format, &cols, &opts).is_ok() {
                let _ = b.finish("d", &opts);
            }
        }
    });
}

/// The MovieLens loaders (100K `u.data`/`u.item`/`u.user`, `.dat`, `.csv`). The first byte picks
/// the layout; the rest holds up to three files separated by `SEPARATOR`.
pub fn movielens(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let parts = split(body);
    let names: &[&str] = match mode % 3 {
        0 => &["u.data", "u.item", "u.user"],
        1 => &["ratings.dat", "movies.dat", "users.dat"],
        _ => &["ratings.csv", "movies.csv", "tags.csv"],
    };
    let files: Vec<(&str, &[u8])> = names.iter().copied().zip(parts).collect();
    let dir = write_files(&files);
    let opts = LoadOptions {
        skip_bad_rows: mode & 8 != 0,
        ..LoadOptions::default()
    };
    quiet(|| {
        check_dataset(match mode % 3 {
            0 => movielens::load_100k(&dir, &opts),
            1 => movielens::load_dat(&dir, &opts),
            _ => movielens::load_csv(&dir, &opts),
        })
    });
}

/// The RecBole atomic-file loader (`.inter`, `.item`, `.user`). Input: up to three files
/// separated by `SEPARATOR`.
pub fn recbole(data: &[u8]) {
    let names = ["ds.inter", "ds.item", "ds.user"];
    let files: Vec<(&str, &[u8])> = names.into_iter().zip(split(data)).collect();
    let dir = write_files(&files);
    quiet(|| check_dataset(recbole::load(&dir, &LoadOptions::default())));
}

/// Model specifications as JSON (`--model '{...}'`, saved manifests). Whatever parses must
/// validate, estimate its memory without overflow, and survive a round trip unchanged.
pub fn spec_json(data: &[u8]) {
    register_all();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    quiet(|| {
        let Ok(spec) = ModelSpec::from_json(text) else {
            return;
        };
        spec.validate().expect("a parsed specification is valid");
        let shape = Shape {
            users: 138_493,
            items: 26_744,
            interactions: 20_000_263,
        };
        let f = spec.footprint(&shape);
        assert!(f.bytes >= 0.0, "footprint {} of {text}", f.bytes);
        let value = spec.to_value().expect("a parsed specification serialises");
        let again = ModelSpec::from_value(value.clone()).expect("its serialised form parses");
        assert_eq!(
            again.to_value().expect("serialises"),
            value,
            "round trip of {text}"
        );
    });
}

fn round_trip(spec: &ModelSpec) {
    spec.validate().expect("a parsed specification is valid");
    let value = spec.to_value().expect("a parsed specification serialises");
    let again = ModelSpec::from_value(value.clone()).expect("its serialised form parses");
    assert_eq!(again.to_value().expect("serialises"), value);
}

/// Model files (`[[model]]` tables, `reco eval --models`) and pipeline files
/// (`reco pipeline --config`) as TOML. The first byte picks which; whatever parses must survive
/// a round trip through its JSON form.
pub fn spec_toml(data: &[u8]) {
    register_all();
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    quiet(|| {
        if mode & 1 == 0 {
            if let Ok(spec) = reco_pipeline::spec_from_toml(text) {
                round_trip(&spec);
            }
            return;
        }
        // The model-file path of the CLI: each table through the strict TOML-to-JSON conversion.
        let Ok(doc) = toml::from_str::<toml::Value>(text) else {
            return;
        };
        let Some(list) = doc.get("model").and_then(|m| m.as_array()) else {
            return;
        };
        for m in list {
            let Ok(mut json) = reco_models::strict_value(m.clone()) else {
                continue;
            };
            if let Some(o) = json.as_object_mut() {
                o.remove("name");
            }
            if let Ok(spec) = ModelSpec::from_value(json) {
                round_trip(&spec);
            }
        }
    });
}

/// Model artifacts of every kind: the manifest and each payload file decoded from memory (the
/// checksums that `reco_models::load` verifies first are skipped, so that mutations reach the
/// decoders). Input: `manifest.json`, then `NAME\n` + bytes for each file, separated by
/// `SEPARATOR`. Whatever loads must recommend for every user and find similar items
/// without panicking, returning items inside the catalogue.
pub fn artifact(data: &[u8]) {
    register_all();
    let parts = split(data);
    let Ok(manifest) = serde_json::from_slice::<Manifest>(parts[0]) else {
        return;
    };
    let mut files = BTreeMap::new();
    for p in &parts[1..] {
        let Some(nl) = p.iter().position(|&b| b == b'\n') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&p[..nl]) else {
            continue;
        };
        files.insert(name.to_string(), p[nl + 1..].to_vec());
    }
    quiet(|| {
        let Ok(m) = reco_models::from_files(Path::new("fuzz"), manifest, &files) else {
            return;
        };
        let n = m.items.len();
        // The first users, and the last one (where an array one entry too short shows): every
        // user would make each execution ten times slower for little more coverage.
        let n_users = m.users.len() as u32;
        let users = (0..n_users.min(8)).chain(n_users.checked_sub(1));
        for u in users {
            let filter = Filter {
                exclude: m.seen(u),
                allow: None,
            };
            if let Ok(recs) = m.model.recommend(&Query::user(u), 10, &filter) {
                assert!(recs.len() <= 10);
                assert!(
                    recs.iter().all(|s| (s.item as usize) < n),
                    "item outside the catalogue"
                );
            }
        }
        let history = [(0u32, 1.0f32)];
        if n > 0 {
            let _ = m
                .model
                .recommend(&Query::history(&history), 10, &Filter::default());
        }
        if let Some(sim) = m.model.as_similar_items() {
            for i in 0..n.min(8) as u32 {
                if let Ok(s) = sim.similar_items(i, 5) {
                    assert!(s.iter().all(|x| (x.item as usize) < n));
                }
            }
        }
    });
}

/// The HNSW graph file (`hnsw.bin`, also inside pipeline artifacts). Whatever decodes must
/// answer a search without panicking: at most k hits, no id twice.
pub fn hnsw(data: &[u8]) {
    let Ok(index) = Hnsw::from_bytes(data) else {
        return;
    };
    let dim = index.dim();
    if dim == 0 || dim > 4096 {
        return;
    }
    let query: Vec<f32> = (0..dim).map(|d| (d as f32 * 0.37).sin()).collect();
    if let Ok(hits) = index.search(&query, 10, &Filter::default()) {
        assert!(hits.len() <= 10.min(index.len()));
        let mut ids: Vec<u32> = hits.iter().map(|h| h.item).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), hits.len(), "an id returned twice");
    }
}
