//! named_pipe: a server and a client process talking through named pipes (FIFOs), and
//! why one pipe is half-duplex while two make a channel.
//!
//! The idea: a FIFO is a pipe with a name in the file system, so two processes that
//! are not parent and child can find each other (`mkfifo /tmp/x`, then one opens it to
//! read and the other to write). Data flows one way only: an end is opened read-only
//! or write-only. For questions *and* answers you need two FIFOs, one per direction.
//! In Node a FIFO is a file: `fs.createWriteStream('/tmp/x')` on one side and
//! `fs.createReadStream('/tmp/x')` on the other (Node's `net.createServer().listen(path)`
//! is a Unix socket, not a FIFO).
//!
//! On Windows "named pipe" means something else: `\\.\pipe\NAME`, created by a server
//! (`CreateNamedPipe`; in Rust `tokio::net::windows::named_pipe::ServerOptions`) and
//! opened by clients, and it is duplex, with one instance per client, much like a Unix
//! socket. Node's `net.createServer().listen('\\\\.\\pipe\\NAME')` uses it. This demo is
//! the Unix FIFO, which is what Linux and macOS call a named pipe.
//!
//! What to watch for:
//! - Opening a FIFO blocks until the other side opens it too: the two processes meet.
//!   Both open `to-server` first and `to-client` second; with opposite orders each would
//!   wait for the other forever.
//! - One pipe: the client writes on `to-server`, then tries to read the answer from the
//!   same end and gets `Bad file descriptor`: its end is write-only.
//! - Two pipes: requests go on `to-server`, answers come back on `to-client`.
//! - The end: the client closes `to-server`; the server reads end-of-file, closes
//!   `to-client` and exits; the client then reads end-of-file too.
//! - The ipc `fifo` transport (`--transport fifo` in the other demos) is this same pair
//!   of FIFOs, with framing and a clean goodbye, in a private directory.
//!
//! ```text
//! cargo run --example named_pipe                          # both sides, FIFOs in a temp dir
//! cargo run --example named_pipe -- --count 5
//! cargo run --example named_pipe -- --serve /tmp/fifos    # or one side per terminal:
//! cargo run --example named_pipe -- --connect /tmp/fifos
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;
use nix::sys::stat::Mode;

/// The FIFO the client writes and the server reads.
const TO_SERVER: &str = "to-server";
/// The FIFO the server writes and the client reads.
const TO_CLIENT: &str = "to-client";

/// A FIFO server and client, in two processes.
#[derive(Parser, Debug)]
struct Args {
    /// Requests the client sends over the pair of pipes.
    #[arg(long, default_value_t = 3)]
    count: u32,
    /// Be only the server: make the two FIFOs in DIR (if missing) and answer one client.
    #[arg(long, value_name = "DIR", conflicts_with = "connect")]
    serve: Option<PathBuf>,
    /// Be only the client of the server serving DIR (it may start before or after).
    #[arg(long, value_name = "DIR")]
    connect: Option<PathBuf>,
}

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Make the FIFO `dir/name` (readable and writable by this user only) unless it exists.
fn make_fifo(dir: &Path, name: &str) -> DemoResult<PathBuf> {
    let path = dir.join(name);
    match nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(path),
        Err(e) => Err(format!("cannot make the FIFO {}: {e}", path.display()).into()),
    }
}

/// The server: read lines on `to-server`, answer each in capitals on `to-client`.
fn serve(dir: &Path) -> DemoResult<()> {
    let to_server = make_fifo(dir, TO_SERVER)?;
    let to_client = make_fifo(dir, TO_CLIENT)?;
    println!("server: waiting for a client on {}", dir.display());
    // Each open blocks until the client opens the same FIFO from the other side.
    let requests = BufReader::new(File::open(&to_server)?);
    let mut answers = OpenOptions::new().write(true).open(&to_client)?;
    println!("server: a client opened both pipes");
    for line in requests.lines() {
        let line = line?;
        println!("server: got {line:?} on {TO_SERVER}, answering on {TO_CLIENT}");
        writeln!(answers, "{}", line.to_uppercase())?;
    }
    println!("server: end of file on {TO_SERVER}: the client is gone; closing {TO_CLIENT}");
    Ok(())
}

/// The client: first show that one FIFO end cannot carry an answer back, then talk
/// over the pair.
fn connect(dir: &Path, count: u32) -> DemoResult<bool> {
    // Whoever comes first makes the FIFOs, so the two sides may start in any order.
    let to_server = make_fifo(dir, TO_SERVER)?;
    let to_client = make_fifo(dir, TO_CLIENT)?;
    let mut requests = OpenOptions::new().write(true).open(to_server)?;
    println!("client: opened {TO_SERVER} to write");
    writeln!(requests, "hello over one pipe")?;
    println!("client: wrote \"hello over one pipe\" on {TO_SERVER}");
    // The same end, now for reading the answer: the kernel refuses.
    let mut buf = [0u8; 64];
    let one_pipe = match requests.read(&mut buf) {
        Err(e) => {
            println!("client: reading the answer from {TO_SERVER} fails: {e}");
            println!("client: one pipe goes one way; the answer needs a second pipe");
            true
        }
        Ok(n) => {
            println!("client: unexpectedly read {n} bytes from a write-only end");
            false
        }
    };
    let mut answers = BufReader::new(File::open(to_client)?).lines();
    println!("client: opened {TO_CLIENT} to read: two pipes, one channel");
    let mut next_answer =
        || -> DemoResult<String> { Ok(answers.next().ok_or("the server closed its pipe early")??) };
    println!("client: answer to the first line: {:?}", next_answer()?);
    let mut answered = 0;
    for i in 1..=count {
        let request = format!("ping {i}");
        writeln!(requests, "{request}")?;
        let answer = next_answer()?;
        println!("client: sent {request:?}, got {answer:?}");
        if answer == request.to_uppercase() {
            answered += 1;
        }
    }
    drop(requests); // end of file for the server
    let ended = answers.next().is_none();
    println!(
        "client: {answered} of {count} answered; {}",
        if ended {
            "the server closed its pipe after ours"
        } else {
            "the server kept writing after we closed"
        }
    );
    Ok(one_pipe && answered == count && ended)
}

/// Both sides: the server as a second process, the client here. The server's log is
/// printed after the client's, so the two do not interleave.
fn both(count: u32) -> DemoResult<bool> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut server = Command::new(exe)
        .arg("--serve")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()?;
    println!("client: server started as pid {}", server.id());
    let client_ok = connect(dir.path(), count);
    if client_ok.is_err() {
        // The server may be blocked opening a pipe we never opened: stop it.
        let _ = server.kill();
    }
    let server_out = server.wait_with_output()?;
    println!("--- the server's log");
    print!("{}", String::from_utf8_lossy(&server_out.stdout));
    println!("--- server exited: {}", server_out.status);
    Ok(client_ok? && server_out.status.success())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match (&args.serve, &args.connect) {
        (Some(dir), _) => serve(dir).map(|()| true),
        (None, Some(dir)) => connect(dir, args.count),
        (None, None) => both(args.count),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("named_pipe: {e}");
            ExitCode::FAILURE
        }
    }
}
