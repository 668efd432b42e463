//! A process-wide "stop" request (Ctrl-C), checked by long work at safe points.
//!
//! The binary installs the signal handler and calls [`request`]; training loops, loaders and
//! writers call [`check`] between units of work and return [`Error::Interrupted`], so the
//! command unwinds normally, removes what it had half-written and exits with a message.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks running work to stop at its next safe point.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Withdraws a stop request once the interrupted work has unwound, for a process that goes on
/// after it (a Python session survives Ctrl-C; its next fit must run).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// `Err(Error::Interrupted)` once a stop was requested.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}
