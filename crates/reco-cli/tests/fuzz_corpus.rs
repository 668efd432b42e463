//! Replays the fuzz corpus (`fuzz/corpus/TARGET/*`, grown by `bench/fuzz.sh`) through the fuzz
//! targets' own functions, without libFuzzer: every input the fuzzer ever kept, including the
//! ones that once crashed, must still be handled. This is the part of fuzzing that runs in CI.

#[allow(dead_code, clippy::all)]
#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

fn replay(name: &str) {
    let (_, run) = targets::TARGETS
        .iter()
        .find(|(t, _)| *t == name)
        .expect("a target of that name");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} holds no inputs", dir.display());
    for p in &inputs {
        // A running fuzzer replaces inputs by smaller ones: one that vanished was superseded.
        let Ok(data) = std::fs::read(p) else {
            continue;
        };
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            targets::clean_up();
            panic!(
                "{} fails (replay it with `cargo fuzz run {name} {}`)",
                p.display(),
                p.display()
            );
        }
    }
    targets::clean_up();
}

/// Targets whose corpus another crate's test replays: the HTTP server's requests
/// (`crates/reco-serve/tests/fuzz_corpus.rs`, which has the server's dependencies).
const ELSEWHERE: &[&str] = &["serve"];

/// Each target has a corpus and a test (below, or in the crate of [`ELSEWHERE`]); each corpus
/// directory has a target.
#[test]
fn corpus_directories_match_the_targets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut dirs: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|d| !ELSEWHERE.contains(&d.as_str()))
        .collect();
    dirs.sort();
    let mut names: Vec<String> = targets::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    names.sort();
    assert_eq!(dirs, names);
}

#[test]
fn delimited() {
    replay("delimited");
}

#[test]
fn movielens() {
    replay("movielens");
}

#[test]
fn recbole() {
    replay("recbole");
}

#[test]
fn spec_json() {
    replay("spec_json");
}

#[test]
fn spec_toml() {
    replay("spec_toml");
}

#[test]
fn artifact() {
    replay("artifact");
}

#[test]
fn hnsw() {
    replay("hnsw");
}
