//! The command line: what to bridge (connect, listen, or spawn a child) and how frames
//! look on stdin/stdout.

use std::ffi::OsString;

use clap::{ArgGroup, Parser};
use ipc::Endpoint;

use crate::exit;

/// How frames appear on ipc-cat's stdin and stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One frame per line (`\n`, `\r\n` accepted); received frames are printed followed
    /// by `\n`.
    Lines,
    /// One JSON value per line, mapped exactly as the stdio transport does.
    Json,
    /// Length-prefixed frames, the wire's own framing (`u32` big-endian length, then the
    /// payload; `FF FF FF FF` is the goodbye).
    Raw,
}

/// Bridge an ipc channel to stdin/stdout: like `socat`/`netcat` for the ipc protocol.
#[derive(Debug, Parser)]
#[command(
    name = "ipc-cat",
    version,
    about = "Bridge an ipc channel to stdin/stdout, or run any program as a child wired to a channel",
    long_about = LONG_ABOUT,
    after_help = exit::HELP,
    group(ArgGroup::new("target").required(true).args(["endpoint", "listen", "spawn"])),
    group(ArgGroup::new("mode").args(["lines", "json", "raw"])),
)]
pub(crate) struct Args {
    /// Connect to this endpoint: tcp://HOST:PORT, unix:/PATH, unix:@NAME, fifo:/DIR,
    /// signal:pid=N, or, when ipc-cat itself is a spawned child, "$IPC_ENDPOINT"
    /// (uds:fd=3, pipe:fd=3,4, tcp with IPC_TOKEN; not stdio:, whose stdin/stdout
    /// ipc-cat needs for the frames).
    pub endpoint: Option<Endpoint>,

    /// Listen on this endpoint and serve one client (tcp://127.0.0.1:0 picks a free
    /// port; the real endpoint is printed on stderr as `ipc-cat: listening on ENDPOINT`).
    #[arg(long, value_name = "ENDPOINT")]
    pub listen: Option<Endpoint>,

    /// With --listen: serve clients one after another (never two at once), until stdin
    /// ends. Lines read while no client is connected wait for the next one.
    #[arg(long, short = 'k', requires = "listen")]
    pub keep_listening: bool,

    /// Run `-- CMD ARGS...` as a child wired to a channel over TRANSPORT (uds, tcp,
    /// pipe, fifo, stdio, signal, node), with the same environment a Rust parent's
    /// `Transport::spawn` gives it (IPC_ENDPOINT, IPC_MAX_FRAME, IPC_TOKEN for tcp).
    #[arg(long, value_name = "TRANSPORT", requires = "command")]
    pub spawn: Option<String>,

    /// The child's program and its arguments, after `--` (with --spawn).
    #[arg(last = true, value_name = "CMD", requires = "spawn")]
    pub command: Vec<OsString>,

    /// One frame per line (the default).
    #[arg(long)]
    pub lines: bool,

    /// One JSON value per line; a stdin line that is not one JSON value is reported on
    /// stderr and skipped.
    #[arg(long)]
    pub json: bool,

    /// Length-prefixed frames on stdin and stdout (the wire framing).
    #[arg(long)]
    pub raw: bool,

    /// Largest frame in bytes, both ways (default 8 MiB, the toolkit's default).
    #[arg(long, value_name = "BYTES", default_value_t = ipc::frame::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
}

impl Args {
    /// The framing chosen for stdin/stdout.
    pub(crate) fn mode(&self) -> Mode {
        if self.json {
            Mode::Json
        } else if self.raw {
            Mode::Raw
        } else {
            Mode::Lines
        }
    }
}

const LONG_ABOUT: &str = "\
Bridge an ipc channel to stdin/stdout, or run any program as a child wired to a channel.

  ipc-cat ENDPOINT                          connect, then bridge
  ipc-cat --listen ENDPOINT [-k]            accept one client (-k: one after another)
  ipc-cat --spawn TRANSPORT -- CMD ARGS...  run CMD as a child over TRANSPORT

Each stdin line (--lines, the default), JSON line (--json) or length-prefixed frame
(--raw) is sent as one frame; every frame received is printed the same way on stdout.
When stdin ends, ipc-cat closes the channel cleanly (the goodbye) and keeps printing
what the peer still sends until the peer closes too. When the peer closes first,
ipc-cat closes its side and stops.

--json uses the stdio transport's mapping (docs/PROTOCOL.md section 9): a frame that
is one JSON value on one line is printed as it is, any other frame as
{\"$bytes\":\"<base64>\"}; on stdin such a $bytes line is sent as the bytes it holds,
and {\"$ipc\":\"goodbye\"} ends the input like end-of-file. Blank stdin lines are
skipped. --raw prints FF FF FF FF after the last frame when the peer closed cleanly
(nothing when it was lost), and a goodbye on stdin ends the input.

With --spawn, the child's stdin is /dev/null and its stdout goes to ipc-cat's stderr
(ipc-cat's stdout carries only frames); its stderr is inherited. Over stdio the
child's stdin/stdout are the channel. For tcp the listener or client uses the token
in IPC_TOKEN when it is set (none otherwise).";
