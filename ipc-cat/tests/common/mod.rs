//! Helpers shared by the integration tests: where the programs are, and running them
//! as real processes with a hang guard.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest any one process of a test may run: a guard against hangs, not a timing test.
pub(crate) const GUARD: Duration = Duration::from_secs(60);

/// The ipc-cat binary under test.
pub(crate) fn ipc_cat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipc-cat"))
}

/// `target/<profile>/`, from this test binary's path (`target/<profile>/deps/...`).
fn profile_dir() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test exe path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// An example of this package (`cargo test` builds them next to the tests).
pub(crate) fn own_example(name: &str) -> PathBuf {
    let path = profile_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built: run through `cargo test`",
        path.display()
    );
    path
}

/// An example of the `ipc-kit` package (`echo`, `fork_ping`). `cargo test -p ipc-cat`
/// does not build another package's examples, so they are built here once per test
/// binary (a no-op when `cargo test --workspace` already did).
pub(crate) fn workspace_example(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--workspace",
            "--example",
            "echo",
            "--example",
            "fork_ping",
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
        if profile_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(why) = built {
        panic!("building the ipc-kit examples failed:\n{why}");
    }
    let path = profile_dir().join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// `python3`, or `None` (after printing why the test is skipped) when it is missing.
pub(crate) fn python() -> Option<&'static str> {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    if found {
        Some("python3")
    } else {
        eprintln!("SKIPPED: python3 is not installed (.ci/run installs it); this test needs it");
        None
    }
}

/// `peers/python/PATH` in the repository.
pub(crate) fn peers_python(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../peers/python")
        .join(path)
}

/// What a finished process left.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panic with everything the process said unless it exited with `code`.
    pub(crate) fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{what}: {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout_text(),
            self.stderr
        );
        self
    }
}

/// Run `cmd` with `input` on stdin (then end-of-file) to completion, within [`GUARD`].
pub(crate) fn run(cmd: &mut Command, input: &[u8]) -> Finished {
    let proc = Proc::start(cmd);
    proc.finish(input)
}

/// A running process; killed when dropped. stdout and stderr are collected by threads.
pub(crate) struct Proc {
    child: Child,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr_lines: Receiver<String>,
    stderr_seen: Vec<String>,
    started: Instant,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Start `cmd` with piped stdin, stdout and stderr.
    pub(crate) fn start(cmd: &mut Command) -> Proc {
        let mut child = spawn_piped(cmd);
        let out = child.stdout.take().expect("stdout");
        Proc::adopt(child, out)
    }

    /// Collect `stdout` (the child's, possibly partly read) and its stderr in threads.
    fn adopt(mut child: Child, mut stdout: impl Read + Send + 'static) -> Proc {
        let stdout = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err = child.stderr.take().expect("stderr");
        let (tx, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            stdout: Some(stdout),
            stderr_lines,
            stderr_seen: Vec::new(),
            started: Instant::now(),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Write to its stdin (kept open).
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Close its stdin (end-of-file).
    pub(crate) fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Wait for a stderr line containing `needle` (bounded by [`GUARD`]); returns it.
    pub(crate) fn wait_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?}; got:\n{}",
                    self.stderr_seen.join("\n")
                ),
            }
        }
    }

    /// SIGKILL it.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("kill");
    }

    /// Write `input`, close stdin, wait for the exit (bounded by [`GUARD`]).
    pub(crate) fn finish(mut self, input: &[u8]) -> Finished {
        if let Some(mut stdin) = self.child.stdin.take() {
            let input = input.to_vec();
            // A writer thread: the process may not read all of it before it exits.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if self.started.elapsed() > GUARD {
                let _ = self.child.kill();
                panic!("the process hung for {GUARD:?}; killed it");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = self
            .stdout
            .take()
            .map(|t| t.join().expect("stdout thread"))
            .unwrap_or_default();
        // The stderr thread ends at end-of-file, shortly after the exit.
        let mut stderr = std::mem::take(&mut self.stderr_seen);
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_secs(5)) {
            stderr.push(line);
        }
        Finished {
            status,
            stdout,
            stderr: stderr.join("\n"),
        }
    }
}

/// Start a listener program (`echo --listen`, `ipc-cat --listen`, the Python server)
/// and return it with the endpoint it printed (`... listening on ENDPOINT`), read from
/// stderr or stdout as the program does.
pub(crate) fn start_listener(cmd: &mut Command, on_stdout: bool) -> (Proc, String) {
    if !on_stdout {
        let mut proc = Proc::start(cmd);
        let line = proc.wait_stderr("listening on ");
        let endpoint = line
            .split("listening on ")
            .nth(1)
            .expect("endpoint")
            .trim()
            .to_string();
        return (proc, endpoint);
    }
    // The first stdout line carries the endpoint.
    let mut child = spawn_piped(cmd);
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("first line");
    let endpoint = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (Proc::adopt(child, out), endpoint)
}

fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}
