//! Model specifications as JSON (`--model '{...}'`, saved manifests). Whatever parses must
//! validate, estimate its memory without overflow, and survive a round trip unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reco_fuzz::spec_json(data));
