//! Sizes and durations for people: `1.0 MiB`, `381 ms`. Used in error messages and in
//! the examples' reports, so a number reads the same everywhere.
//!
//! ```
//! use std::time::Duration;
//! use ipc_core::human::{bytes, duration};
//! assert_eq!(bytes(8 << 20), "8.0 MiB");
//! assert_eq!(duration(Duration::from_millis(381)), "381 ms");
//! ```

use std::time::Duration;

/// A byte count in binary units: `64 B`, `1.5 KiB`, `8.0 MiB`, `2.0 GiB`.
///
/// ```
/// assert_eq!(ipc_core::human::bytes(64), "64 B");
/// assert_eq!(ipc_core::human::bytes(1536), "1.5 KiB");
/// ```
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration with three significant digits at most and the unit that fits:
/// `850 ns`, `12.3 µs`, `381 ms`, `1.50 s`, `2 min 5 s`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ipc_core::human::duration(Duration::from_micros(12_300)), "12.3 ms");
/// assert_eq!(ipc_core::human::duration(Duration::from_secs(5)), "5.00 s");
/// ```
pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        return format!("{ns} ns");
    }
    if d.as_secs() >= 60 {
        let secs = d.as_secs();
        return format!("{} min {} s", secs / 60, secs % 60);
    }
    let (value, unit) = if ns < 1_000_000 {
        (ns as f64 / 1e3, "µs")
    } else if ns < 1_000_000_000 {
        (ns as f64 / 1e6, "ms")
    } else {
        (ns as f64 / 1e9, "s")
    };
    if value >= 100.0 {
        format!("{value:.0} {unit}")
    } else if value >= 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pick_the_unit_that_fits() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(65_536), "64.0 KiB");
        assert_eq!(bytes(9_000_000), "8.6 MiB");
        assert_eq!(bytes(u64::from(u32::MAX)), "4.0 GiB");
    }

    #[test]
    fn durations_keep_three_digits() {
        assert_eq!(duration(Duration::from_nanos(850)), "850 ns");
        assert_eq!(duration(Duration::from_nanos(1_500)), "1.50 µs");
        assert_eq!(duration(Duration::from_micros(381)), "381 µs");
        assert_eq!(duration(Duration::from_millis(381)), "381 ms");
        assert_eq!(duration(Duration::from_millis(1_500)), "1.50 s");
        assert_eq!(duration(Duration::from_secs(125)), "2 min 5 s");
    }
}
