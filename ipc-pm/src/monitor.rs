//! Memory and CPU of whole process trees, read from `/proc`: every managed process
//! leads a process group of its own, so its tree is its group.

use std::collections::HashMap;
use std::time::Instant;

/// Resident memory and CPU time of one process group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GroupUsage {
    /// Bytes resident, summed over the group.
    pub(crate) rss: u64,
    /// CPU time so far (user + system) in clock ticks, summed over the group.
    pub(crate) ticks: u64,
}

/// Every process group's usage, in one pass over `/proc`.
pub(crate) fn sample() -> HashMap<u32, GroupUsage> {
    let page = rustix::param::page_size() as u64;
    let mut groups: HashMap<u32, GroupUsage> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // gone meanwhile
        };
        if let Some((pgrp, usage)) = parse_stat(&stat, page) {
            let group = groups.entry(pgrp).or_default();
            group.rss += usage.rss;
            group.ticks += usage.ticks;
        }
    }
    groups
}

/// The group and usage in a `/proc/PID/stat` line.
fn parse_stat(stat: &str, page: u64) -> Option<(u32, GroupUsage)> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): field N is fields[N - 3].
    let pgrp = fields.get(2)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss: u64 = fields.get(21)?.parse().ok()?;
    Some((
        pgrp,
        GroupUsage {
            rss: rss * page,
            ticks: utime + stime,
        },
    ))
}

/// Turns successive samples of one group into a CPU percentage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMeter {
    last: Option<(Instant, u64)>,
}

impl CpuMeter {
    /// A meter with no sample yet.
    pub(crate) fn new() -> Self {
        CpuMeter { last: None }
    }

    /// The CPU % since the previous sample (`None` for the first one).
    pub(crate) fn update(&mut self, now: Instant, ticks: u64) -> Option<f64> {
        let hz = rustix::param::clock_ticks_per_second() as f64;
        let percent = match self.last {
            Some((then, before)) if ticks >= before => {
                let secs = now.duration_since(then).as_secs_f64();
                if secs > 0.0 {
                    Some((ticks - before) as f64 / hz / secs * 100.0)
                } else {
                    Some(0.0)
                }
            }
            _ => None,
        };
        self.last = Some((now, ticks));
        percent
    }
}

/// `12.3MB`, `512KB`, `1.2GB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// `200M`, `1G`, `512K`, `1048576` (bytes) -> bytes.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => {
            let mult = match t[at..].to_ascii_uppercase().as_str() {
                "B" => 1,
                "K" | "KB" => 1 << 10,
                "M" | "MB" => 1 << 20,
                "G" | "GB" => 1 << 30,
                other => {
                    return Err(format!(
                        "{text:?}: unknown size unit {other:?}; use K, M or G (e.g. 200M)"
                    ))
                }
            };
            (&t[..at], mult)
        }
        None => (t, 1),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write e.g. 200M, 1G or 524288"))?;
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_in_the_name_parse() {
        let line = "42 (my (odd) app) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 1000000 250 18446744073709551615";
        let (pgrp, usage) = parse_stat(line, 4096).expect("parses");
        assert_eq!(pgrp, 42);
        assert_eq!(usage.ticks, 10);
        assert_eq!(usage.rss, 250 * 4096);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("200M"), Ok(200 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("12X").is_err());
        assert_eq!(human_bytes(3 << 20), "3.0MB");
    }

    #[test]
    fn our_own_group_is_sampled() {
        let ours = rustix::process::getpgrp().as_raw_nonzero().get() as u32;
        assert!(sample().get(&ours).is_some_and(|g| g.rss > 0));
    }
}
