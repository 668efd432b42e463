//! Running the `reco` binary from the integration tests.

// Each test file uses the helpers it needs.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `reco` with `args` and waits for it.
pub fn reco(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reco"))
        .args(args)
        .output()
        .expect("run reco")
}

/// What the run printed on standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What the run printed on standard output.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
