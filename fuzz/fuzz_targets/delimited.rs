//! The delimited reader and the three delimited loaders (interactions, item metadata, sessions).
//! The first byte chooses the delimiter, header, loader and load options; the rest is the file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| reco_fuzz::delimited(data));
