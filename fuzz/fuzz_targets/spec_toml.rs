//! Model files (`[[model]]` tables, `reco eval --models`) and pipeline files
//! (`reco pipeline --config`) as TOML. The first byte picks which; whatever parses must survive
//! a round trip through its JSON form.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reco_fuzz::spec_toml(data));
