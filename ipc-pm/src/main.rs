//! `ipcm`: a process manager in the spirit of pm2 for any program, built on
//! `ipc-cluster`'s supervisor. See the README's "ipcm" section.
//!
//! ```text
//! ipcm start --name web -i 4 --port 8080 --wait-ready python3 server.py
//! ipcm list
//! ipcm reload web
//! ipcm logs web --follow
//! ```

#![forbid(unsafe_code)]

mod cli;
mod client;
mod daemon;
mod logs;
mod monitor;
mod paths;
mod proto;
mod spec;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cli::{Cli, Cmd};
use paths::Home;
use proto::{Request, Response};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Daemon {
        background: true, ..
    } = &cli.command
    {
        // A session of our own: no terminal's hangup reaches the daemon.
        let _ = nix::unistd::setsid();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipcm: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipcm: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let home = Home::from_env();
    let (request, json) = match cli.command {
        Cmd::Daemon {
            monitor_interval,
            background,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("IPCM_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .with_ansi(!background)
                .init();
            return daemon::run(home, Duration::from_millis(monitor_interval.max(10))).await;
        }
        Cmd::Kill => {
            let Some(mut conn) = client::connect_existing(&home).await? else {
                println!("no ipcm daemon runs ({})", home.socket().display());
                return Ok(());
            };
            return finish(client::ask(&mut conn, Request::Kill).await?, false);
        }
        Cmd::Logs {
            target,
            lines,
            follow,
        } => return logs(&home, target, lines, follow).await,
        Cmd::Start(args) => {
            if let Some((file, env_name)) = spec::config_file(&args.cmd)? {
                let env_name = env_name.or(args.env_name.clone());
                let specs = spec::from_file(&file, env_name.as_deref())?;
                (Request::Start(specs), args.json)
            } else if args.cmd.len() == 1
                && args.name.is_none()
                && !args.cmd[0].contains('/')
                && !std::path::Path::new(&args.cmd[0]).exists()
                && start_existing(&home, &args.cmd[0]).await?
            {
                return show_list(&home, args.json).await;
            } else {
                (Request::Start(vec![spec::from_args(&args)?]), args.json)
            }
        }
        Cmd::Stop { target } => (Request::Stop(target), false),
        Cmd::Restart { target } => (Request::Restart(target), false),
        Cmd::Reload { target } => (Request::Reload(target), false),
        Cmd::Delete { target } => (Request::Delete(target), false),
        Cmd::List { json } => (Request::List, json),
        Cmd::Describe { target, json } => {
            let mut conn = client::connect(&home).await?;
            return match client::ask(&mut conn, Request::Describe(target)).await? {
                Response::Apps(apps) if json => print_json(&apps),
                Response::Apps(apps) => {
                    for app in &apps {
                        say(describe(app).trim_end());
                    }
                    Ok(())
                }
                other => finish(other, false),
            };
        }
        Cmd::Save => (Request::Save, false),
        Cmd::Resurrect => (Request::Resurrect, false),
        Cmd::Signal { signal, target } => (Request::Signal { target, signal }, false),
        Cmd::Scale { target, instances } => (Request::Scale { target, instances }, false),
    };
    let listed = matches!(request, Request::List);
    let mut conn = client::connect(&home).await?;
    let response = client::ask(&mut conn, request).await?;
    let failed = match response {
        Response::Error(e) => Some(e),
        other => {
            finish(other, json)?;
            None
        }
    };
    if !listed {
        show_list(&home, json).await?;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Ask the daemon to start a known app; false when it knows no such app.
async fn start_existing(home: &Home, name: &str) -> Result<bool, String> {
    let Some(mut conn) = client::connect_existing(home).await? else {
        return Ok(false);
    };
    match client::ask(&mut conn, Request::StartExisting(name.to_string())).await? {
        Response::Error(e) if e.starts_with("no app named") => Ok(false),
        other => finish(other, false).map(|()| true),
    }
}

async fn show_list(home: &Home, json: bool) -> Result<(), String> {
    let mut conn = client::connect(home).await?;
    finish(client::ask(&mut conn, Request::List).await?, json)
}

/// Print one answer; an error answer is returned as the error.
fn finish(response: Response, json: bool) -> Result<(), String> {
    match response {
        Response::Done(message) => {
            if !message.is_empty() && !json {
                say(&message);
            }
            Ok(())
        }
        Response::Apps(apps) if json => print_json(&apps),
        Response::Apps(apps) => {
            say(table::render(&apps).trim_end());
            Ok(())
        }
        Response::Log(line) => {
            say(&format!(
                "{}[{}] {} | {}",
                line.app, line.instance, line.stream, line.line
            ));
            Ok(())
        }
        Response::Error(e) => Err(e),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    say(&text);
    Ok(())
}

/// Print a line; a closed stdout (`ipcm list | head`) is not an error worth a panic.
fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

fn describe(app: &proto::AppInfo) -> String {
    let s = &app.spec;
    let mut out = format!("{} (id {})\n", app.name, app.id);
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<20} {v}\n"));
    row("command", s.cmd.join(" "));
    row("cwd", s.cwd.display().to_string());
    row("mode", format!("{} x{}", s.mode, s.instances));
    if let Some(addr) = &app.address {
        row("listening on", addr.clone());
    }
    row(
        "wait ready",
        format!(
            "{} (listen_timeout {} ms)",
            s.wait_ready, s.listen_timeout_ms
        ),
    );
    row(
        "kill",
        format!(
            "{} then SIGKILL after {} ms",
            s.kill_signal, s.kill_timeout_ms
        ),
    );
    row(
        "restarts",
        format!(
            "autorestart {}, max {} unstable (min uptime {} ms), delay {} ms{}",
            s.autorestart,
            s.max_restarts,
            s.min_uptime_ms,
            s.restart_delay_ms,
            s.exp_backoff_ms
                .map(|b| format!(", exp backoff from {b} ms"))
                .unwrap_or_default()
        ),
    );
    if let Some(max) = s.max_memory_restart {
        row("max memory", monitor::human_bytes(max));
    }
    row(
        "log rotation",
        format!("{} x {}", monitor::human_bytes(s.log_max_size), s.log_files),
    );
    for i in &app.instances {
        row(
            &format!("instance {}", i.index),
            format!(
                "{} pid {} restarts {} mem {}",
                i.status,
                i.pid.map_or("-".into(), |p| p.to_string()),
                i.restarts,
                i.memory.map_or("-".into(), monitor::human_bytes)
            ),
        );
        for (what, log) in [("out log", &i.out_log), ("error log", &i.err_log)] {
            if let Some(path) = log {
                row(&format!("  {what}"), path.display().to_string());
            }
        }
    }
    if app.history.is_empty() {
        out.push_str("  restart history      none\n");
    } else {
        out.push_str("  restart history (last first)\n");
        for e in app.history.iter().rev() {
            out.push_str(&format!(
                "    {}  instance {}  pid {}  {}\n",
                e.at,
                e.instance,
                e.pid.map_or("-".into(), |p| p.to_string()),
                e.reason
            ));
        }
    }
    out
}

async fn logs(
    home: &Home,
    target: Option<String>,
    lines: usize,
    follow: bool,
) -> Result<(), String> {
    let mut conn = client::connect(home).await?;
    let mut response = client::ask(
        &mut conn,
        Request::Logs {
            target,
            lines,
            follow,
        },
    )
    .await?;
    loop {
        match response {
            Response::Done(_) => return Ok(()),
            other => finish(other, false)?,
        }
        response = match client::next(&mut conn).await? {
            Some(r) => r,
            None => return Ok(()),
        };
    }
}
