//! `reco`: load data, split it, train, evaluate and recommend from the command line.

mod commands;
mod models;
mod progress;
mod source;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Like other Unix filters, stop quietly when the reader goes away (`reco demo | head`).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    one_thread_per_candle_operation();
    stop_on_interrupt();
    let cli = commands::Cli::parse();
    // The neural and composite models live in their own crates; plug their kinds in before
    // any spec is read.
    let ready = reco_neural::register()
        .and_then(|()| reco_pipeline::register())
        .map_err(anyhow::Error::from);
    match ready.and_then(|()| commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The exit status of a failed command: the class of the first reco error in the chain, so
/// that scripts can tell bad input from a bad model file or a diverged fit (documented in
/// README.md; clap uses 2 for a malformed command line).
fn exit_code(e: &anyhow::Error) -> u8 {
    use reco_core::ErrorCategory as C;
    let Some(r) = e.chain().find_map(|c| c.downcast_ref::<reco_core::Error>()) else {
        return 1;
    };
    match r.category() {
        C::Spec => 3,
        C::Data => 4,
        C::Io => 5,
        C::Artifact => 6,
        C::Training => 7,
        C::Unsupported => 8,
        C::Resources => 9,
        C::Interrupted => 130,
    }
}

/// Ctrl-C asks long work to stop at its next safe point (an epoch, a block of rows, before an
/// artifact is renamed into place), so the command unwinds, removes what it had half-written
/// and says so. A second Ctrl-C ends the process at once; artifact writes are atomic, so even
/// that leaves no half-written model.
fn stop_on_interrupt() {
    #[cfg(unix)]
    {
        extern "C" fn on_sigint(_: libc::c_int) {
            use std::sync::atomic::{AtomicBool, Ordering};
            static SEEN: AtomicBool = AtomicBool::new(false);
            if SEEN.swap(true, Ordering::SeqCst) {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(130) };
            }
            reco_core::interrupt::request();
            let msg = b"\ninterrupt: stopping at the next safe point (Ctrl-C again to quit now)\n";
            // SAFETY: write(2) on stderr with a valid buffer is async-signal-safe.
            unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        }
        // SAFETY: installing a handler that only touches an atomic and calls async-signal-safe
        // functions, before any thread starts.
        unsafe {
            libc::signal(
                libc::SIGINT,
                on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// candle splits every tensor operation over all cores; at the sizes of a training step the
/// hand-offs cost more than they gain (on 2 cores a two-tower epoch took 35 s on two threads
/// and 30 s on one). The neural models instead run independent halves of a step on cores of
/// their own. Both follow `RAYON_NUM_THREADS`, so unless the user set it, rayon's pool is built
/// with every core first and candle is then told to keep each operation on one thread.
fn one_thread_per_candle_operation() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build_global()
        .is_ok()
    {
        // SAFETY: called at the start of main, before any other thread exists, so nothing reads
        // the environment at the same time.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

/// Neural training allocates and frees the same few-megabyte buffers thousands of times a
/// second; glibc hands blocks that large back to the kernel at every free, and the page faults
/// of getting them again doubled the time of a two-tower epoch. Keep them in the heap instead.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
