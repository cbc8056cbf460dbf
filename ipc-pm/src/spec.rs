//! Turning `ipcm start`'s arguments, or an `ipcm.toml` file, into [`AppSpec`]s.
//!
//! An app gets the client's environment (as pm2 does), less the variables that
//! describe the client's own process (`NOTIFY_SOCKET`, `LISTEN_*`, the toolkit's
//! channel), plus its own `env` (and `env_NAME` with `--env-name NAME`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{parse_duration_ms, StartArgs};
use crate::monitor::parse_bytes;
use crate::proto::{AppSpec, ExecMode};

/// Variables that belong to the client's process, never passed on.
const NOT_INHERITED: [&str; 9] = [
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "IPC_ENDPOINT",
    "IPC_TOKEN",
    "NODE_CHANNEL_FD",
    "NODE_APP_INSTANCE",
    "IPC_WORKER_INDEX",
];

fn client_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| !NOT_INHERITED.contains(&k.as_str()))
        .collect()
}

/// The config file `ipcm start` was given, and the `--env-name` written after it
/// (`ipcm start ipcm.toml --env-name production`, as with pm2); `None` for a program.
pub(crate) fn config_file(cmd: &[String]) -> Result<Option<(PathBuf, Option<String>)>, String> {
    let Some(first) = cmd.first().filter(|f| f.ends_with(".toml")) else {
        return Ok(None);
    };
    let env_name = match &cmd[1..] {
        [] => None,
        [flag, name] if flag == "--env-name" => Some(name.clone()),
        [flag] if flag.starts_with("--env-name=") => Some(flag["--env-name=".len()..].to_string()),
        rest => {
            return Err(format!(
                "after a config file only --env-name NAME may follow, not {rest:?}; the \
                 other options go in the file"
            ))
        }
    };
    Ok(Some((PathBuf::from(first), env_name)))
}

/// The command to run for `program args`: a script runs with its interpreter
/// (`.js` with node, `.py` with python3), a relative path with `/` from `cwd`.
fn command_line(cmd: &[String], cwd: &Path) -> Vec<String> {
    let mut out: Vec<String> = cmd.to_vec();
    let Some(first) = out.first().cloned() else {
        return out;
    };
    let interpreter = [
        (".js", "node"),
        (".mjs", "node"),
        (".cjs", "node"),
        (".py", "python3"),
    ]
    .iter()
    .find(|(ext, _)| first.ends_with(ext))
    .map(|(_, i)| *i);
    if let Some(interpreter) = interpreter {
        out.insert(0, interpreter.to_string());
    } else if first.contains('/') && Path::new(&first).is_relative() {
        out[0] = cwd.join(&first).to_string_lossy().into_owned();
    }
    out
}

/// The default name: the script's or program's file stem.
fn default_name(cmd: &[String]) -> String {
    cmd.first()
        .and_then(|p| Path::new(p).file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into())
}

/// `N` or `max`.
fn parse_instances(text: &str) -> Result<usize, String> {
    match text.trim() {
        "max" | "0" | "-1" => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n
            .parse::<usize>()
            .map_err(|_| format!("--instances {text:?}: write a number or max")),
    }
}

fn listen_of(port: Option<u16>, listen: Option<String>) -> Option<String> {
    listen.or_else(|| port.map(|p| format!("0.0.0.0:{p}")))
}

/// The spec `ipcm start [OPTIONS] PROGRAM [ARGS...]` describes.
pub(crate) fn from_args(args: &StartArgs) -> Result<AppSpec, String> {
    let here = std::env::current_dir().map_err(|e| format!("where are we? {e}"))?;
    let cwd = match &args.cwd {
        Some(dir) => here.join(dir),
        None => here,
    };
    let mut spec = AppSpec::new(
        args.name.clone().unwrap_or_else(|| default_name(&args.cmd)),
        command_line(&args.cmd, &cwd),
        cwd,
    );
    spec.env = client_env();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--env {kv:?}: write KEY=VALUE"))?;
        spec.env.insert(k.to_string(), v.to_string());
    }
    if let Some(n) = &args.instances {
        spec.instances = parse_instances(n)?;
    }
    if let Some(mode) = args.mode {
        spec.mode = mode;
    }
    spec.listen = listen_of(args.port, args.listen.clone());
    if spec.listen.is_some() && args.mode.is_none() {
        spec.mode = ExecMode::Shared;
    }
    spec.wait_ready = args.wait_ready;
    set(&mut spec.listen_timeout_ms, args.listen_timeout);
    set(&mut spec.kill_timeout_ms, args.kill_timeout);
    set(&mut spec.kill_signal, args.kill_signal.clone());
    set(&mut spec.max_restarts, args.max_restarts);
    set(&mut spec.min_uptime_ms, args.min_uptime);
    set(&mut spec.restart_delay_ms, args.restart_delay);
    spec.exp_backoff_ms = args.exp_backoff;
    spec.autorestart = !args.no_autorestart;
    spec.stop_exit_codes = args.stop_exit_codes.clone();
    spec.max_memory_restart = args.max_memory_restart;
    set(&mut spec.log_max_size, args.log_max_size);
    set(&mut spec.log_files, args.log_files);
    if let Some(control) = args.control {
        spec.control = control.into();
    }
    check(&spec)?;
    Ok(spec)
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

fn check(spec: &AppSpec) -> Result<(), String> {
    if spec.mode != ExecMode::Fork && spec.listen.is_none() {
        return Err(format!(
            "{}: mode {} needs --port PORT or --listen HOST:PORT (the daemon binds it for \
             the instances)",
            spec.name, spec.mode
        ));
    }
    if spec.name.is_empty() || spec.name.contains('/') || spec.name == "all" {
        return Err(format!("{:?} cannot be an app name", spec.name));
    }
    crate::daemon::check_signal(&spec.kill_signal)
}

/// A duration in the config file: milliseconds or text (`"1s"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Dur {
    Ms(u64),
    Text(String),
}

impl Dur {
    fn ms(&self) -> Result<u64, String> {
        match self {
            Dur::Ms(ms) => Ok(*ms),
            Dur::Text(t) => parse_duration_ms(t),
        }
    }
}

/// A number or text (`instances = "max"`, `max_memory_restart = "200M"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(u64),
    Text(String),
}

/// The program: `"server --port 1"` (split on spaces) or `["server", "--port", "1"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CmdValue {
    Line(String),
    Argv(Vec<String>),
}

/// `ipcm.toml`: `[[apps]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    apps: Vec<AppEntry>,
}

/// One `[[apps]]` table: the same fields as `ipcm start`'s options.
#[derive(Debug, Deserialize)]
struct AppEntry {
    name: String,
    cmd: CmdValue,
    #[serde(default)]
    args: Vec<String>,
    cwd: Option<PathBuf>,
    instances: Option<NumOrText>,
    mode: Option<String>,
    port: Option<u16>,
    listen: Option<String>,
    wait_ready: Option<bool>,
    listen_timeout: Option<Dur>,
    kill_timeout: Option<Dur>,
    kill_signal: Option<String>,
    max_restarts: Option<u32>,
    min_uptime: Option<Dur>,
    restart_delay: Option<Dur>,
    exp_backoff_restart_delay: Option<Dur>,
    autorestart: Option<bool>,
    stop_exit_codes: Option<Vec<i32>>,
    max_memory_restart: Option<NumOrText>,
    log_max_size: Option<NumOrText>,
    log_files: Option<usize>,
    #[serde(default)]
    env: BTreeMap<String, toml::Value>,
    /// `env_NAME` tables (anything else is refused).
    #[serde(flatten)]
    rest: BTreeMap<String, toml::Value>,
}

fn env_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn size(v: &NumOrText) -> Result<u64, String> {
    match v {
        NumOrText::Num(n) => Ok(*n),
        NumOrText::Text(t) => parse_bytes(t),
    }
}

/// The specs of the apps in the config file at `path`, with `env_NAME` applied when
/// `env_name` is given.
pub(crate) fn from_file(path: &Path, env_name: Option<&str>) -> Result<Vec<AppSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("could not read {}: {e}", path.display()))?;
    let here = std::env::current_dir().map_err(|e| format!("where are we? {e}"))?;
    let base = here
        .join(path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(here);
    parse_file(&text, &base, env_name).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_file(text: &str, base: &Path, env_name: Option<&str>) -> Result<Vec<AppSpec>, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut specs = Vec::new();
    let mut found_env = env_name.is_none();
    for app in file.apps {
        let cwd = match &app.cwd {
            Some(dir) => base.join(dir),
            None => base.to_path_buf(),
        };
        let mut argv = match &app.cmd {
            CmdValue::Line(line) => line.split_whitespace().map(str::to_string).collect(),
            CmdValue::Argv(argv) => argv.clone(),
        };
        argv.extend(app.args.iter().cloned());
        let mut spec = AppSpec::new(app.name.clone(), command_line(&argv, &cwd), cwd);
        spec.env = client_env();
        spec.env
            .extend(app.env.iter().map(|(k, v)| (k.clone(), env_value(v))));
        for (key, value) in &app.rest {
            match key.strip_prefix("env_") {
                Some(name) => {
                    let toml::Value::Table(table) = value else {
                        return Err(format!(
                            "app {}: {key} must be a table of variables",
                            app.name
                        ));
                    };
                    if Some(name) == env_name {
                        found_env = true;
                        spec.env
                            .extend(table.iter().map(|(k, v)| (k.clone(), env_value(v))));
                    }
                }
                None => return Err(format!("app {}: unknown field {key:?}", app.name)),
            }
        }
        if let Some(n) = &app.instances {
            spec.instances = match n {
                NumOrText::Num(n) => *n as usize,
                NumOrText::Text(t) => parse_instances(t)?,
            };
        }
        if let Some(mode) = &app.mode {
            spec.mode = mode.parse()?;
        }
        spec.listen = listen_of(app.port, app.listen.clone());
        set(&mut spec.wait_ready, app.wait_ready);
        set(
            &mut spec.listen_timeout_ms,
            app.listen_timeout.as_ref().map(Dur::ms).transpose()?,
        );
        set(
            &mut spec.kill_timeout_ms,
            app.kill_timeout.as_ref().map(Dur::ms).transpose()?,
        );
        set(&mut spec.kill_signal, app.kill_signal.clone());
        set(&mut spec.max_restarts, app.max_restarts);
        set(
            &mut spec.min_uptime_ms,
            app.min_uptime.as_ref().map(Dur::ms).transpose()?,
        );
        set(
            &mut spec.restart_delay_ms,
            app.restart_delay.as_ref().map(Dur::ms).transpose()?,
        );
        spec.exp_backoff_ms = app
            .exp_backoff_restart_delay
            .as_ref()
            .map(Dur::ms)
            .transpose()?;
        set(&mut spec.autorestart, app.autorestart);
        set(&mut spec.stop_exit_codes, app.stop_exit_codes.clone());
        spec.max_memory_restart = app.max_memory_restart.as_ref().map(size).transpose()?;
        set(
            &mut spec.log_max_size,
            app.log_max_size.as_ref().map(size).transpose()?,
        );
        set(&mut spec.log_files, app.log_files);
        check(&spec)?;
        specs.push(spec);
    }
    if !found_env {
        let name = env_name.unwrap_or_default();
        return Err(format!(
            "--env-name {name}: no app has an [apps.env_{name}] table"
        ));
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[apps]]
name = "web"
cmd = "server.py --verbose"
instances = 2
mode = "shared"
port = 8080
wait_ready = true
kill_timeout = "3s"
max_memory_restart = "200M"
[apps.env]
LEVEL = "info"
PORT = 8080
[apps.env_production]
LEVEL = "warn"

[[apps]]
name = "worker"
cmd = ["./worker", "--queue", "jobs"]
restart_delay = 250
"#;

    #[test]
    fn a_config_file_with_two_apps_and_an_environment() {
        let specs = parse_file(FILE, Path::new("/srv/app"), Some("production")).expect("parses");
        assert_eq!(specs.len(), 2);
        let web = &specs[0];
        assert_eq!(web.cmd, ["python3", "server.py", "--verbose"]);
        assert_eq!(web.mode, ExecMode::Shared);
        assert_eq!(web.listen.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(web.kill_timeout_ms, 3000);
        assert_eq!(web.max_memory_restart, Some(200 << 20));
        assert_eq!(web.env["LEVEL"], "warn");
        assert_eq!(web.env["PORT"], "8080");
        let worker = &specs[1];
        assert_eq!(worker.cmd[0], "/srv/app/./worker");
        assert_eq!(worker.restart_delay_ms, 250);
        assert_eq!(worker.cwd, Path::new("/srv/app"));
    }

    #[test]
    fn unknown_fields_and_missing_environments_are_refused() {
        let typo = "[[apps]]\nname = \"a\"\ncmd = \"x\"\ninstnces = 2\n";
        assert!(parse_file(typo, Path::new("/"), None)
            .expect_err("refused")
            .contains("instnces"));
        assert!(parse_file(FILE, Path::new("/"), Some("staging"))
            .expect_err("refused")
            .contains("env_staging"));
    }
}
