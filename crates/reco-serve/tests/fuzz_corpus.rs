//! Replays the `serve` fuzz target's saved corpus (`fuzz/corpus/serve/*`, grown by
//! `bench/fuzz.sh`) through the target's own function, without libFuzzer: every request the
//! fuzzer kept, including any that once failed, must still be answered properly.

#[allow(dead_code, clippy::all)]
#[path = "../../../fuzz/src/serve.rs"]
mod target;

use std::path::Path;

#[test]
fn serve() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/serve");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 20, "{} holds too few inputs", dir.display());
    for p in &inputs {
        let Ok(data) = std::fs::read(p) else {
            continue;
        };
        if std::panic::catch_unwind(|| target::serve(&data)).is_err() {
            target::clean_up();
            panic!(
                "{} fails (replay it with `cargo fuzz run serve {}`)",
                p.display(),
                p.display()
            );
        }
    }
    target::clean_up();
}
