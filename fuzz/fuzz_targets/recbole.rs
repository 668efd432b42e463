//! The RecBole atomic-file loader (`.inter`, `.item`, `.user`). Input: up to three files
//! separated by `reco_fuzz::SEPARATOR`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reco_fuzz::recbole(data));
