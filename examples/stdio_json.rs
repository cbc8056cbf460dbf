//! stdio_json: a parent and a child talk in JSON lines over the child's stdin and
//! stdout, while the child's logs go to stderr and never get in the way.
//!
//! The idea: the simplest IPC there is. Every process already has three streams, so a
//! parent that pipes a child's stdin and stdout gets a two-way channel for free; one
//! JSON value per line makes it a message protocol any language can speak. In Node
//! this is `spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] })` with `readline`
//! over `child.stdout` and `child.stdin.write(JSON.stringify(msg) + '\n')`.
//!
//! Here the protocol is written out by hand with `std::process` and `serde_json`, so
//! nothing is hidden. The child says hello (with its pid and protocol version), the
//! parent answers welcome, then sends requests and reads one response per request, and
//! finally says bye; the child exits 0.
//!
//! What to watch for:
//! - `parent ->` / `parent <-` lines are exactly the bytes on the child's stdin and
//!   stdout: one JSON object per line.
//! - `child (stderr):` lines are the child's logs. They reach your terminal through the
//!   child's stderr, which the parent shares; they never appear in the JSON stream, so
//!   the parent never has to skip them. A child that `println!`s a log line would
//!   break the protocol: that is why logs go to stderr.
//! - The ipc `stdio` transport (`--transport stdio` in the other demos) is this same
//!   idea with framing, binary payloads and a clean goodbye done for you.
//!
//! ```text
//! cargo run --example stdio_json
//! cargo run --example stdio_json -- --count 5
//! ```

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, ExitCode, Stdio};

use clap::Parser;
use serde::{Deserialize, Serialize};

/// The protocol version both sides must agree on in the handshake.
const PROTOCOL: u32 = 1;

/// One line of the protocol. `type` names the message: `{"type":"hello",...}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Message {
    /// Child to parent, first line: who it is and which protocol it speaks.
    Hello { pid: u32, protocol: u32 },
    /// Parent to child: the handshake is accepted.
    Welcome { protocol: u32 },
    /// Parent to child: add up `args`.
    Request { id: u32, op: String, args: Vec<i64> },
    /// Child to parent: the answer to request `id`.
    Response { id: u32, result: i64 },
    /// Child to parent: request `id` could not be done.
    Error { id: u32, message: String },
    /// Parent to child: no more requests, please exit.
    Bye,
}

/// Talk to a child in JSON lines over its stdin and stdout.
#[derive(Parser, Debug)]
struct Args {
    /// Number of requests the parent sends after the handshake.
    #[arg(long, default_value_t = 3)]
    count: u32,
    /// Run as the child (the parent starts this program again with this flag).
    #[arg(long, hide = true)]
    child: bool,
}

/// Write one message as one line and flush it, so the other side sees it now.
fn send(to: &mut impl Write, msg: &Message) -> std::io::Result<String> {
    let line = serde_json::to_string(msg)?;
    writeln!(to, "{line}")?;
    to.flush()?;
    Ok(line)
}

/// The child: hello, then answer requests until bye. Logs go to stderr only.
fn child() -> Result<(), String> {
    let pid = std::process::id();
    eprintln!("child (stderr): started as pid {pid}, stdout is reserved for JSON");
    let mut stdout = std::io::stdout().lock();
    send(
        &mut stdout,
        &Message::Hello {
            pid,
            protocol: PROTOCOL,
        },
    )
    .map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        let msg: Message = serde_json::from_str(&line)
            .map_err(|e| format!("the parent sent a line that is not a message ({e}): {line}"))?;
        let reply = match msg {
            Message::Welcome { protocol } => {
                eprintln!("child (stderr): handshake done, protocol {protocol}");
                continue;
            }
            Message::Request { id, op, args } if op == "sum" => {
                eprintln!(
                    "child (stderr): request {id}: sum of {} numbers",
                    args.len()
                );
                Message::Response {
                    id,
                    result: args.iter().sum(),
                }
            }
            Message::Request { id, op, .. } => Message::Error {
                id,
                message: format!("unknown op {op:?} (this child knows: sum)"),
            },
            Message::Bye => {
                eprintln!("child (stderr): bye received, exiting 0");
                return Ok(());
            }
            other => return Err(format!("unexpected message from the parent: {other:?}")),
        };
        send(&mut stdout, &reply).map_err(|e| e.to_string())?;
    }
    Err("stdin ended without a bye".into())
}

/// The parent's side of the conversation: send, print, and read the next line.
struct Conversation {
    to_child: ChildStdin,
    from_child: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Conversation {
    fn send(&mut self, msg: &Message) -> Result<(), String> {
        let line =
            send(&mut self.to_child, msg).map_err(|e| format!("writing to the child: {e}"))?;
        println!("parent -> {line}");
        Ok(())
    }

    fn recv(&mut self) -> Result<Message, String> {
        let line = self
            .from_child
            .next()
            .ok_or("the child closed its stdout before answering")?
            .map_err(|e| format!("reading the child's stdout: {e}"))?;
        println!("parent <- {line}");
        serde_json::from_str(&line).map_err(|e| {
            format!("the child wrote a line that is not a message ({e}); logs belong on stderr")
        })
    }
}

fn parent(args: &Args) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("--child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    println!(
        "parent: started child pid {} (stdin and stdout piped, stderr shared)",
        child.id()
    );
    let mut talk = Conversation {
        to_child: child.stdin.take().ok_or("no stdin pipe")?,
        from_child: BufReader::new(child.stdout.take().ok_or("no stdout pipe")?).lines(),
    };
    match talk.recv()? {
        Message::Hello { protocol, .. } if protocol == PROTOCOL => {}
        Message::Hello { protocol, .. } => {
            return Err(format!(
                "the child speaks protocol {protocol}, this parent speaks {PROTOCOL}"
            ))
        }
        other => return Err(format!("expected hello first, got {other:?}")),
    }
    talk.send(&Message::Welcome { protocol: PROTOCOL })?;
    let mut answered = 0;
    for id in 1..=args.count {
        let numbers: Vec<i64> = (1..=i64::from(id) + 1).collect();
        let expected: i64 = numbers.iter().sum();
        talk.send(&Message::Request {
            id,
            op: "sum".into(),
            args: numbers,
        })?;
        match talk.recv()? {
            Message::Response { id: got, result } if got == id && result == expected => {
                answered += 1
            }
            other => return Err(format!("request {id}: unexpected answer {other:?}")),
        }
    }
    talk.send(&Message::Bye)?;
    drop(talk); // closes the child's stdin
    let status = child.wait().map_err(|e| e.to_string())?;
    println!(
        "parent: {answered} of {} requests answered; child exited: {status}",
        args.count
    );
    Ok(answered == args.count && status.success())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.child {
        return match child() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stdio_json child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match parent(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("stdio_json: {e}");
            ExitCode::FAILURE
        }
    }
}
