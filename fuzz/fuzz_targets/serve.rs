//! HTTP requests to `reco serve` (method, URI, content type and body), through its router on
//! an SQLite database: no server error, JSON errors, finite scores, no more items than asked.
#![no_main]

#[allow(dead_code)] // clean_up is for the replay test
#[path = "../src/serve.rs"]
mod serve;

libfuzzer_sys::fuzz_target!(|data: &[u8]| serve::serve(data));
