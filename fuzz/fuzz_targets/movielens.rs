//! The MovieLens loaders (100K `u.data`/`u.item`/`u.user`, `.dat`, `.csv`). The first byte picks
//! the layout; the rest holds up to three files separated by `reco_fuzz::SEPARATOR`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reco_fuzz::movielens(data));
