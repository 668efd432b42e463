//! Warnings: input that is accepted but deserves the user's attention (a renamed parameter, a
//! skipped row).
//!
//! Library code calls [`warn`]; whoever drives it decides where warnings go. Inside
//! [`capture`] they are collected for the caller (a server could return them with its response);
//! otherwise they are printed to standard error, so a command-line user always sees them.
//! Capture is per thread, which is where specifications are parsed.

use std::cell::RefCell;

thread_local! {
    static CAPTURED: RefCell<Vec<Vec<String>>> = const { RefCell::new(Vec::new()) };
}

/// Reports a warning: to the innermost [`capture`] on this thread, or to standard error.
pub fn warn(message: impl Into<String>) {
    let message = message.into();
    let kept = CAPTURED.with(|c| match c.borrow_mut().last_mut() {
        Some(list) => {
            list.push(message.clone());
            true
        }
        None => false,
    });
    if !kept {
        eprintln!("warning: {message}");
    }
}

/// Runs `f` and returns its result with the warnings it reported, in order.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    CAPTURED.with(|c| c.borrow_mut().push(Vec::new()));
    // Pops even when `f` panics, so a caught panic does not leave a stale frame behind.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            CAPTURED.with(|c| c.borrow_mut().pop());
        }
    }
    let guard = Pop;
    let value = f();
    let warnings = CAPTURED.with(|c| c.borrow_mut().last_mut().map(std::mem::take));
    drop(guard);
    (value, warnings.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_collects_in_order_and_nests() {
        let ((inner, a), b) = capture(|| {
            warn("outer 1");
            let r = capture(|| {
                warn("inner");
                7
            });
            warn("outer 2");
            r
        });
        assert_eq!(inner, 7);
        assert_eq!(a, vec!["inner".to_string()]);
        assert_eq!(b, vec!["outer 1".to_string(), "outer 2".to_string()]);
    }
}
