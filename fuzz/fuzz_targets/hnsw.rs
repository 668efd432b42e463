//! The HNSW graph file (`hnsw.bin`, also inside pipeline artifacts). Whatever decodes must
//! answer a search without panicking: at most k hits, no id twice.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reco_fuzz::hnsw(data));
