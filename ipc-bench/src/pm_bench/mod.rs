//! `ipc-bench --pm`: the `ipcm` process manager against pm2, in one run, driven
//! through both command lines as a user would, each with a private home in a temp dir.
//!
//! For each manager, in turn (never both at once):
//! 1. **daemon start**: the first command (`ipcm list --json`, `pm2 ping`), which starts
//!    the daemon and returns once it answers;
//! 2. **daemon RSS idle**: after a settle pause, `VmRSS` of the daemon process from
//!    `/proc` (pm2's "God Daemon", from `PM2_HOME/pm2.pid`);
//! 3. **start**: N apps started one by one (`ipcm start`, `pm2 start`), each timed from
//!    launching the CLI until both the CLI has returned and the app has reported that
//!    it runs (see [`apps`]);
//! 4. **daemon RSS with N apps**, after the settle pause again;
//! 5. **list**: `ipcm list --json` / `pm2 jlist` with the N apps, median of the rounds;
//! 6. **crash-to-restart**: the bench SIGKILLs the first app's process and times until
//!    the replacement's first statement reports to the bench (restart delay 0 on both);
//!    the "floor" row is the same app spawned by the bench itself, i.e. fork + exec +
//!    `/bin/sh` start-up, which both managers pay too.
//!
//! The app is the same `/bin/sh` script for both; both managers get
//! `--restart-delay 0` and a `--max-restarts` high enough never to give up.

mod apps;
mod interrupt;
mod locate;
mod manager;
mod probe;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use crate::report::table::render_targets;
use crate::report::targets::{absolute, Check};
use apps::Reports;
use manager::{Kind, Manager};

/// How long an app may take to report after a start or a crash before the run fails.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The options of a `--pm` run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// `--ipcm`: the `ipcm` binary (default: next to this one, else on `PATH`).
    pub ipcm: Option<PathBuf>,
    /// `--install-pm2`.
    pub install_pm2: bool,
    /// Apps started for the "with N apps" figures.
    pub apps: usize,
    /// `list` runs and crashes.
    pub rounds: usize,
    /// Pause before each RSS reading, and a tenth of it between crashes.
    pub settle: Duration,
}

/// A few timings, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    /// How many.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Summary {
    fn of(mut took: Vec<Duration>) -> Summary {
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Summary {
            count: took.len(),
            p50_ms: took.get(took.len() / 2).map_or(0.0, |d| ms(*d)),
            max_ms: took.last().map_or(0.0, |d| ms(*d)),
        }
    }
}

/// What one manager measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measured {
    /// `ipcm` or `pm2`.
    pub manager: &'static str,
    /// Its `--version`.
    pub version: String,
    /// The program run.
    pub program: String,
    /// The first command, which starts the daemon, ms.
    pub daemon_start_ms: f64,
    /// The daemon's RSS with no app, bytes.
    pub rss_idle_bytes: u64,
    /// The daemon's RSS with `apps` apps, bytes.
    pub rss_apps_bytes: u64,
    /// `start` until the CLI returned and the app runs.
    pub start: Summary,
    /// `list --json` / `jlist`.
    pub list: Summary,
    /// SIGKILL of the app until its replacement runs.
    pub crash_to_restart: Summary,
}

/// The whole `--pm` report (what `--json` writes).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PmReport {
    /// Apps in the "with N apps" figures.
    pub apps: usize,
    /// `list` runs and crashes per manager.
    pub rounds: usize,
    /// The bench spawning the app itself: the floor under crash-to-restart.
    pub floor: Summary,
    /// ipcm, then pm2 when it ran.
    pub managers: Vec<Measured>,
    /// Why pm2 did not run, when it did not.
    pub pm2_skipped: Option<String>,
    /// The targets, checked against ipcm.
    pub targets: Vec<Check>,
    /// `/proc/loadavg` before and after.
    pub load: (String, String),
}

/// Measure ipcm, then pm2 (or say why not); print the table; return the report.
/// An ipcm failure is an error; a pm2 failure is printed and leaves its column out.
pub(crate) fn run(options: &Options) -> Result<(PmReport, bool)> {
    let load_before = crate::machine::load_average();
    interrupt::install()?;
    let ipcm_program = locate::ipcm(options.ipcm.as_deref())?;
    let floor = floor(options).context("the floor (the bench spawning the app itself)")?;
    let ipcm = measure(Manager::new(Kind::Ipcm, ipcm_program, None)?, options)
        .context("measuring ipcm")?;
    let mut managers = vec![ipcm];
    let mut ok = true;
    let pm2_skipped = match locate::pm2(options.install_pm2) {
        Err(reason) => Some(reason),
        Ok(found) => {
            let manager = Manager::new(Kind::Pm2, found.program, found.install)?;
            match measure(manager, options) {
                Ok(m) => {
                    managers.push(m);
                    None
                }
                Err(e) => {
                    ok = false;
                    Some(format!("failed: {e:#}"))
                }
            }
        }
    };
    let targets = targets(&managers[0]);
    let report = PmReport {
        apps: options.apps,
        rounds: options.rounds,
        floor,
        managers,
        pm2_skipped,
        targets,
        load: (load_before, crate::machine::load_average()),
    };
    print!("{}", render(&report));
    Ok((report, ok))
}

/// Every figure for one manager; the manager's guard stops its daemon on return.
fn measure(mut manager: Manager, options: &Options) -> Result<Measured> {
    let name = manager.kind().name();
    let script = apps::write_script(manager.scratch())?;
    let mut reports = Reports::open(manager.scratch())?;
    eprintln!("ipc-bench: {name}: starting the daemon");
    let daemon_start = manager.boot()?;
    let daemon = manager.daemon_pid()?;
    std::thread::sleep(options.settle);
    let rss_idle_bytes = probe::rss_bytes(daemon)?;

    eprintln!("ipc-bench: {name}: starting {} apps", options.apps);
    let mut starts = Vec::with_capacity(options.apps);
    let mut first_pid = None;
    for i in 0..options.apps {
        let app = format!("app-{i}");
        let began = Instant::now();
        let returned = manager.start(&app, &script, reports.path())?;
        let up = reports.next(&app, REPORT_TIMEOUT)?;
        manager.remember(up.pid);
        first_pid.get_or_insert(up.pid);
        starts.push(returned.max(up.at.duration_since(began)));
    }
    std::thread::sleep(options.settle);
    let rss_apps_bytes = probe::rss_bytes(daemon)?;

    eprintln!("ipc-bench: {name}: {} lists", options.rounds);
    let lists = (0..options.rounds)
        .map(|_| manager.list())
        .collect::<Result<Vec<_>>>()?;

    let mut crashes = Vec::with_capacity(options.rounds);
    if let Some(mut pid) = first_pid {
        eprintln!("ipc-bench: {name}: {} crashes", options.rounds);
        for _ in 0..options.rounds {
            std::thread::sleep(options.settle / 10);
            let crashed = Instant::now();
            kill(Pid::from_raw(pid), Signal::SIGKILL).context("killing the app")?;
            let up = reports.next("app-0", REPORT_TIMEOUT)?;
            manager.remember(up.pid);
            crashes.push(up.at.duration_since(crashed));
            pid = up.pid;
        }
    }
    let version = manager.version();
    Ok(Measured {
        manager: name,
        version,
        program: manager.program().display().to_string(),
        daemon_start_ms: daemon_start.as_secs_f64() * 1000.0,
        rss_idle_bytes,
        rss_apps_bytes,
        start: Summary::of(starts),
        list: Summary::of(lists),
        crash_to_restart: Summary::of(crashes),
    })
}

/// The bench spawns the app itself `rounds` times: spawn until its report.
fn floor(options: &Options) -> Result<Summary> {
    let dir = tempfile::Builder::new()
        .prefix("ipc-bench-pm-floor-")
        .tempdir()?;
    let script = apps::write_script(dir.path())?;
    let mut reports = Reports::open(dir.path())?;
    let mut took = Vec::with_capacity(options.rounds);
    for _ in 0..options.rounds.max(1) {
        let began = Instant::now();
        let mut child = std::process::Command::new(&script)
            .arg(reports.path())
            .arg("floor")
            .spawn()
            .with_context(|| format!("running {}", script.display()))?;
        let up = reports.next("floor", REPORT_TIMEOUT);
        let _ = child.kill();
        let _ = child.wait();
        took.push(up?.at.duration_since(began));
    }
    Ok(Summary::of(took))
}

/// The targets, for ipcm.
fn targets(ipcm: &Measured) -> Vec<Check> {
    vec![
        absolute(
            "ipcm",
            "idle daemon < 10 MB RSS",
            Some(mib(ipcm.rss_idle_bytes)),
            10.0,
            true,
            " MiB",
        ),
        absolute(
            "ipcm",
            "crash-to-restart p50 < 50 ms + delay (0 ms)",
            (ipcm.crash_to_restart.count > 0).then_some(ipcm.crash_to_restart.p50_ms),
            50.0,
            true,
            " ms",
        ),
    ]
}

/// Bytes in MiB (as `ps` and `top` count; the "10 MB" target is checked in MiB,
/// the stricter reading).
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// Reads one figure of a manager's measurements.
type Figure = fn(&Measured) -> f64;

/// The table: one row per figure, a column per manager, and ipcm/pm2.
fn render(report: &PmReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nipcm vs pm2: {} apps (a /bin/sh script that execs sleep), restart delay 0, \
         {} lists and crashes; load {} -> {}",
        report.apps, report.rounds, report.load.0, report.load.1
    );
    for m in &report.managers {
        let _ = writeln!(out, "{}: {} ({})", m.manager, m.version, m.program);
    }
    if let Some(reason) = &report.pm2_skipped {
        let _ = writeln!(out, "pm2: skipped ({reason})");
    }
    let ipcm = &report.managers[0];
    let pm2 = report.managers.get(1);
    let _ = writeln!(
        out,
        "\n{:<34} {:>11} {:>11} {:>9}",
        "figure", "ipcm", "pm2", "ipcm/pm2"
    );
    let rows: [(String, Figure, &str); 8] = [
        (
            "daemon start (first command)".into(),
            |m| m.daemon_start_ms,
            "ms",
        ),
        ("daemon RSS idle".into(), |m| mib(m.rss_idle_bytes), "MiB"),
        (
            format!("daemon RSS with {} apps", report.apps),
            |m| mib(m.rss_apps_bytes),
            "MiB",
        ),
        ("start p50".into(), |m| m.start.p50_ms, "ms"),
        ("start max".into(), |m| m.start.max_ms, "ms"),
        (
            format!("list p50 ({} apps)", report.apps),
            |m| m.list.p50_ms,
            "ms",
        ),
        (
            "crash-to-restart p50".into(),
            |m| m.crash_to_restart.p50_ms,
            "ms",
        ),
        (
            "crash-to-restart max".into(),
            |m| m.crash_to_restart.max_ms,
            "ms",
        ),
    ];
    for (label, figure, unit) in rows {
        let a = figure(ipcm);
        let (b, ratio) = match pm2 {
            Some(p) => {
                let b = figure(p);
                let ratio = if b > 0.0 {
                    let r = a / b;
                    if r < 0.1 {
                        format!("{r:.3}x")
                    } else {
                        format!("{r:.2}x")
                    }
                } else {
                    "-".into()
                };
                (format!("{b:.2} {unit}"), ratio)
            }
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{label:<34} {:>11} {b:>11} {ratio:>9}",
            format!("{a:.2} {unit}")
        );
    }
    let _ = writeln!(
        out,
        "{:<34} {:>11} (the bench spawns the app itself: fork + exec + sh)",
        "floor: app start p50",
        format!("{:.2} ms", report.floor.p50_ms)
    );
    out.push_str(&render_targets(&report.targets));
    out
}
