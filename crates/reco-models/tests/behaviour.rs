//! The behaviour suite on every built-in kind, one test per example (`reco_testing`).

fn main() -> std::process::ExitCode {
    let kinds: Vec<_> = reco_models::registry::BUILTIN.iter().collect();
    reco_testing::run_suite(&kinds)
}
