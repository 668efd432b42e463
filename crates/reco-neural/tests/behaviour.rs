//! The behaviour suite on every neural kind, one test per example (`reco_testing`), through
//! the registry as the binary uses them.

fn main() -> std::process::ExitCode {
    if let Err(e) = reco_neural::register() {
        eprintln!("{e}");
        return std::process::ExitCode::FAILURE;
    }
    let kinds: Vec<_> = reco_neural::KINDS.iter().collect();
    reco_testing::run_suite(&kinds)
}
