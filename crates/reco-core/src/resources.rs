//! The memory budget: work whose size comes from input is estimated before it allocates, and
//! refused at once when the estimate exceeds the budget, instead of aborting on a failed
//! allocation minutes later (or swapping the machine to a halt).
//!
//! The budget defaults to the memory the system reports as available when first asked; the
//! CLI's `--memory-limit` (and a server's configuration) set it explicitly.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// 0 means "not set yet": read the system's available memory on first use.
static BUDGET: AtomicU64 = AtomicU64::new(0);

/// Sets the memory budget in bytes for the rest of the process.
pub fn set_memory_budget(bytes: u64) {
    BUDGET.store(bytes.max(1), Ordering::SeqCst);
}

/// The memory budget in bytes: the value set, else the system's available memory (Linux
/// `MemAvailable`), else unlimited.
pub fn memory_budget() -> u64 {
    match BUDGET.load(Ordering::Relaxed) {
        0 => {
            let b = available_memory().unwrap_or(u64::MAX);
            BUDGET.store(b.max(1), Ordering::SeqCst);
            b
        }
        b => b,
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Fails with [`Error::TooLarge`] when `bytes` exceed the budget. `what` says what would be
/// built and `lower` which parameter to lower.
pub fn check(what: impl FnOnce() -> String, bytes: f64, lower: &str) -> Result<()> {
    let budget = memory_budget();
    if bytes.is_finite() && bytes <= budget as f64 {
        return Ok(());
    }
    Err(Error::TooLarge {
        what: what(),
        needed: human(bytes),
        budget: human(budget as f64),
        hint: format!("; lower {lower}, or raise --memory-limit if the machine has the memory"),
    })
}

/// A byte count for people: `1.5 GiB`.
pub fn human(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "more than can be counted".into();
    }
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} bytes")
    } else if v >= 1024.0 {
        format!("{:.3e} {}", v, units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Parses a size such as `512M`, `4G`, `4GiB`, `1.5g` or a plain byte count.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        Error::param(
            "memory-limit",
            format!("{s:?} is not a size; write e.g. 512M, 4G or 8589934592"),
        )
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = v * mult;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "G", "-1G", "1Q", "0", "nan", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(human(1536.0), "1.5 KiB");
        assert_eq!(human(160e9), "149.0 GiB");
        assert_eq!(human(f64::INFINITY), "more than can be counted");
    }

    #[test]
    fn over_budget_is_refused_with_the_parameter_to_lower() {
        set_memory_budget(1 << 30);
        assert!(check(|| "x".into(), 1e9, "factors").is_ok());
        let e = check(|| "svd".into(), 2e9, "factors")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("svd") && e.contains("lower factors") && e.contains("1.0 GiB"),
            "{e}"
        );
        assert!(check(|| "x".into(), f64::INFINITY, "k").is_err());
        assert!(check(|| "x".into(), f64::NAN, "k").is_err());
    }
}
