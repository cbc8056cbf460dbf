//! What the run ran on and how: OS, kernel, CPU, load, pinning, runtime, Node.

use serde::Serialize;

use crate::cli::{Args, Flavor};

/// The machine and the run's settings, printed above the table and stored in the JSON.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// `PRETTY_NAME` from `/etc/os-release`.
    pub os: String,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// The first `model name` in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// The CPU pinned cells ran on (`None` with `--no-pin`).
    pub pinned_cpu: Option<usize>,
    /// With `--stream-cpus`: the CPUs of a stream's parent and child.
    pub stream_cpus: Option<(usize, usize)>,
    /// The toolkit processes' runtime flavour.
    pub runtime: &'static str,
    /// `--quick` was given.
    pub quick: bool,
    /// Runs of every cell (`--repeat`).
    pub repeat: u32,
    /// `/proc/loadavg` when the run started.
    pub load_before: String,
    /// `/proc/loadavg` when it ended.
    pub load_after: String,
    /// `node --version`, when Node ran.
    pub node: Option<String>,
    /// The command line.
    pub command: String,
    /// Seconds since the Unix epoch at the start.
    pub started_unix: u64,
    /// How long the run took, in seconds.
    pub duration_s: f64,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The first three fields of `/proc/loadavg` (1, 5 and 15 minute load).
pub(crate) fn load_average() -> String {
    read_trimmed("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

impl Machine {
    /// Describe this machine and the run `args` asks for (the load after, Node and the
    /// duration are filled in at the end).
    pub(crate) fn describe(
        args: &Args,
        cpus: usize,
        pinned_cpu: Option<usize>,
        flavor: Flavor,
    ) -> Machine {
        let os = read_trimmed("/etc/os-release")
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let cpu_model = read_trimmed("/proc/cpuinfo")
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            os,
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            cpu_model,
            cpus,
            pinned_cpu,
            stream_cpus: None,
            runtime: flavor.as_str(),
            quick: args.quick,
            repeat: args.repeat.max(1),
            load_before: load_average(),
            load_after: String::new(),
            node: None,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            duration_s: 0.0,
        }
    }
}
