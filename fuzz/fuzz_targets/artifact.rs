//! Model artifacts of every kind: the manifest and each payload file decoded from memory (the
//! checksums that `reco_models::load` verifies first are skipped, so that mutations reach the
//! decoders). Input: `manifest.json`, then `NAME\n` + bytes for each file, separated by
//! `reco_fuzz::SEPARATOR`. Whatever loads must recommend for every user and find similar items
//! without panicking, returning items inside the catalogue.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reco_fuzz::artifact(data));
