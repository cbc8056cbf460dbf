//! Round-trip latency of a stdio channel, with the child driving its stdin/stdout two
//! ways: reactor-driven pipes (what `ipc_stdio::from_stdio` does) and
//! `tokio::io::stdin()`/`stdout()` (a blocking read/write on tokio's thread pool per
//! chunk). The parent is the same in both: `ipc_stdio::spawn`.
//!
//! Mirrors the seeds' Node stdio demo (parent writes JSON to the child's stdin, the
//! child answers on stdout), timed.
//!
//! ```text
//! cargo run --release -p ipc-stdio --example stdio_rtt
//! cargo run --release -p ipc-stdio --example stdio_rtt -- --count 50000 --size 1024
//! taskset -c 0 cargo run --release -p ipc-stdio --example stdio_rtt   # pinned to one CPU
//! ```
//!
//! Measured on a 2-CPU Linux VM shared with other builds (release, 20 000 round trips):
//!
//! ```text
//!                      reactor p50   tokio-stdin p50
//! 64 B, pinned           11.6 µs        51 µs
//! 64 B, unpinned         61-73 µs       99-125 µs
//! 1 KiB, pinned          14.4 µs        68 µs
//! ```
//!
//! The program re-executes itself as the child (`STDIO_RTT_MODE` selects the child's
//! mode). Each frame is a JSON object of `--size` bytes, so it travels verbatim.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::stream;
use ipc_core::ChannelInfo;
use ipc_stdio::JsonLinesCodec;

/// The child's mode: `reactor` or `tokio-stdin`.
const MODE_VAR: &str = "STDIO_RTT_MODE";

struct Options {
    count: usize,
    warmup: usize,
    size: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        count: 20_000,
        warmup: 2_000,
        size: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--count" => options.count = value("--count")?.max(1),
            "--warmup" => options.warmup = value("--warmup")?,
            "--size" => options.size = value("--size")?.max(16),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; use --count N, --warmup N, --size BYTES"
                ))
            }
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match std::env::var(MODE_VAR) {
        Ok(mode) => runtime.block_on(child(&mode))?,
        Err(_) => {
            let options = parse_args()?;
            println!(
                "stdio round trips: {} x {}-byte JSON frames (after {} warm-up)",
                options.count, options.size, options.warmup
            );
            println!(
                "{:<12} {:>9} {:>9} {:>9} {:>11}",
                "child mode", "p50 µs", "p99 µs", "mean µs", "round trips/s"
            );
            for mode in ["reactor", "tokio-stdin"] {
                runtime.block_on(parent(mode, &options))?;
            }
        }
    }
    Ok(())
}

/// Echo every frame until the parent closes.
async fn child(mode: &str) -> ipc_core::Result<()> {
    let options = ipc_core::Options::from_env();
    let mut channel: Box<dyn Channel> = match mode {
        "reactor" => Box::new(ipc_stdio::from_stdio(&options)?),
        _ => {
            let codec = JsonLinesCodec::new(options.frame_config());
            let info = ChannelInfo::new("stdio");
            Box::new(stream::channel(
                tokio::io::stdin(),
                tokio::io::stdout(),
                codec,
                info,
            ))
        }
    };
    while let Some(frame) = channel.recv().await? {
        channel.send(frame).await?;
    }
    Ok(channel.close().await?)
}

async fn parent(mode: &str, options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.env(MODE_VAR, mode);
    let (mut child, mut channel) = ipc_stdio::spawn(command, &Default::default()).await?;
    let prefix = r#"{"seq":0,"pad":""#;
    let pad = "x".repeat(options.size.saturating_sub(prefix.len() + 2));
    let frame = Bytes::from(format!("{prefix}{pad}\"}}"));
    let mut samples = Vec::with_capacity(options.count);
    for i in 0..options.warmup + options.count {
        let start = Instant::now();
        channel.send(frame.clone()).await?;
        let echo = channel.recv().await?;
        let took = start.elapsed();
        if echo.as_ref() != Some(&frame) {
            return Err(format!("bad echo at {i}: {echo:?}").into());
        }
        if i >= options.warmup {
            samples.push(took);
        }
    }
    channel.close().await?;
    while channel.recv().await?.is_some() {}
    let status = child.wait().await?;
    if !status.success() {
        return Err(format!("child ({mode}) exited with {status}").into());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let total: Duration = samples.iter().sum();
    let mean = total / samples.len() as u32;
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{:<12} {:>9.1} {:>9.1} {:>9.1} {:>11.0}",
        mode,
        micros(at(0.5)),
        micros(at(0.99)),
        micros(mean),
        samples.len() as f64 / total.as_secs_f64()
    );
    Ok(())
}
