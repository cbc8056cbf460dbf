//! Children as processes: what happens to them when their parent dies, when the parent
//! kills them, and when they cannot be started at all. Real processes and real signals:
//! the children (and the parents that get SIGKILLed) are this binary, re-executed as a
//! child playing a [`Role`].

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::sync::Arc;

use bytes::Bytes;
use ipc::prelude::*;
use ipc::rpc::RpcClient;
use ipc::testkit;
use ipc::Error;
use libtest_mimic::{Arguments, Failed, Trial};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

ipc::child_roles! {
    /// What a re-executed copy of this binary does.
    enum Role {
        /// Spawn a child over the transport in [`ARG`] (`TRANSPORT` or
        /// `TRANSPORT:detached`), print its pid, and wait to be killed.
        OrphanParent,
        /// Open the channel, say ready, and never read it.
        IdleChild,
        /// Read the channel until the parent is gone, then say so on stdout.
        OutlivingChild,
        /// Serve rpc calls that answer, fail, panic or hang.
        RpcServer,
        /// Report what the transport says it can do.
        CapsChild,
        /// Echo frames until the parent closes.
        EchoChild,
    }
}

/// Env var carrying the argument of a [`Role::OrphanParent`].
const ARG: &str = "IPC_PROCESS_TEST_ARG";

/// Transports that spawn children (all but `node`, whose children must speak JSON).
/// `signal` is the facade's opt-in feature: on in `cargo test --workspace` (ipc-cat and
/// ipc-bench ask for it), off in `cargo test -p ipc-kit`.
const SPAWN_TRANSPORTS: &[&str] = &[
    "uds",
    "tcp",
    "pipe",
    "fifo",
    "stdio",
    #[cfg(feature = "signal")]
    "signal",
];

/// Longest any wait in these tests may take before it counts as a hang.
const GUARD: Duration = Duration::from_secs(20);

type TestResult = Result<(), Failed>;

fn fail(msg: impl Into<String>) -> Failed {
    Failed::from(msg.into())
}

fn this_binary(role: Role) -> Command {
    testkit::child_command(role)
}

/// A pidfd for `pid`: readable once that process has exited, whoever its parent is.
fn pidfd(pid: u32) -> std::io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Wait up to `limit` for the process behind `pidfd` to exit; true if it did.
fn exited_within(pidfd: &OwnedFd, limit: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut poll, 1, left.as_millis() as i32) };
        if n > 0 {
            return true;
        }
        if n == 0 || std::time::Instant::now() >= deadline {
            return false;
        }
        // EINTR: poll again for the time left.
    }
}

// ---------------------------------------------------------------------------------
// Roles (this binary re-executed)
// ---------------------------------------------------------------------------------

/// Run the role this process was started for, if any; returns the exit code.
fn role_main() -> Option<i32> {
    let role = testkit::role::<Role>()?;
    let outcome = match role {
        Role::OrphanParent => ipc::run(orphan_parent(std::env::var(ARG).unwrap_or_default())),
        Role::IdleChild => ipc::run(idle_child()),
        Role::OutlivingChild => ipc::run(outliving_child()),
        Role::RpcServer => ipc::run(rpc_server()),
        Role::CapsChild => ipc::run(caps_child()),
        Role::EchoChild => ipc::run(echo_child()),
    };
    match outcome {
        Ok(()) => Some(0),
        Err(e) => {
            eprintln!("role {role:?}: {e}");
            Some(1)
        }
    }
}

/// Spawn a child over `arg` (`TRANSPORT` or `TRANSPORT:detached`), print its pid, and
/// wait to be killed.
async fn orphan_parent(arg: String) -> ipc::Result<()> {
    let (transport, detached) = match arg.split_once(':') {
        Some((t, "detached")) => (t.to_string(), true),
        _ => (arg, false),
    };
    let mut command = this_binary(if detached {
        Role::OutlivingChild
    } else {
        Role::IdleChild
    });
    if detached {
        ipc::spawn::detached(&mut command);
    }
    let (child, mut channel) = ipc::registry()
        .get(&transport)?
        .spawn(command, &Default::default())
        .await?;
    // Some transports return from spawn before the child has connected: wait for it.
    if channel.recv().await?.as_deref() != Some(&b"ready"[..]) {
        return Err(std::io::Error::other("the child did not say ready").into());
    }
    println!("child {}", child.pid());
    // Hold both until SIGKILL arrives.
    std::future::pending::<()>().await;
    drop((child, channel));
    Ok(())
}

/// Open the channel, say ready, and never read it.
async fn idle_child() -> ipc::Result<()> {
    let mut parent = ipc::connect_from_env().await?;
    parent.send("ready".into()).await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Read the channel until the parent is gone, then say so on stdout.
async fn outliving_child() -> ipc::Result<()> {
    let mut parent = ipc::connect_from_env().await?;
    parent.send("ready".into()).await?;
    while let Ok(Some(_)) = parent.recv().await {}
    println!("outlived the parent");
    Ok(())
}

// ---------------------------------------------------------------------------------
// Orphans
// ---------------------------------------------------------------------------------

/// Start an orphan-parent over `arg` (see [`Role::OrphanParent`]); returns it and its
/// child's pid.
fn start_orphan_parent(arg: &str) -> Result<(std::process::Child, u32, impl BufRead), Failed> {
    let mut parent = this_binary(Role::OrphanParent)
        .env(ARG, arg)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("start the parent: {e}")))?;
    let mut stdout = BufReader::new(parent.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .map_err(|e| fail(format!("read the parent's stdout: {e}")))?;
    let pid = line
        .trim()
        .strip_prefix("child ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| fail(format!("{arg}: expected `child PID`, got {line:?}")))?;
    Ok((parent, pid, stdout))
}

fn child_dies_with_its_sigkilled_parent(transport: &'static str) -> TestResult {
    let (mut parent, pid, _stdout) = start_orphan_parent(transport)?;
    let child = pidfd(pid).map_err(|e| fail(format!("pidfd_open({pid}): {e}")))?;
    if exited_within(&child, Duration::ZERO) {
        return Err(fail(format!(
            "child {pid} died before its parent was killed"
        )));
    }
    kill(Pid::from_raw(parent.id() as i32), Signal::SIGKILL).expect("SIGKILL the parent");
    parent.wait().expect("reap the parent");
    if exited_within(&child, GUARD) {
        return Ok(());
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    Err(fail(format!(
        "child {pid} over {transport} outlived its SIGKILLed parent by {GUARD:?}"
    )))
}

fn a_detached_child_outlives_its_sigkilled_parent() -> TestResult {
    let (mut parent, pid, mut stdout) = start_orphan_parent("uds:detached")?;
    kill(Pid::from_raw(parent.id() as i32), Signal::SIGKILL).expect("SIGKILL the parent");
    parent.wait().expect("reap the parent");
    // The child inherited the parent's stdout: it reports there once it has seen the
    // parent go (or the read ends at EOF if it died instead).
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    match read {
        Ok(_) if line.trim() == "outlived the parent" => Ok(()),
        other => Err(fail(format!(
            "detached child {pid}: expected it to report, got {other:?} {line:?}"
        ))),
    }
}

/// The child's life is tied to the process, not to the thread that spawned it: a
/// tokio blocking-pool thread that spawns a child and then retires must not take the
/// child with it.
fn a_child_outlives_the_thread_that_spawned_it() -> TestResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(1))
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let handle = tokio::runtime::Handle::current();
        let (tid, spawned) = tokio::task::spawn_blocking(move || {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let transport = ipc::registry().get("uds").expect("uds");
            (
                tid,
                handle.block_on(transport.spawn(this_binary(Role::EchoChild), &Default::default())),
            )
        })
        .await
        .expect("blocking task");
        let (_child, mut channel) = spawned.map_err(|e| fail(format!("spawn: {e}")))?;
        // Wait (bounded) until the blocking thread that forked the child has exited.
        let task = format!("/proc/self/task/{tid}");
        let deadline = std::time::Instant::now() + GUARD;
        while std::path::Path::new(&task).exists() {
            if std::time::Instant::now() >= deadline {
                return Err(fail("the blocking thread never retired"));
            }
            // Idle blocking threads wake up to retire; give them the chance.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        channel.send("still there?".into()).await?;
        match tokio::time::timeout(GUARD, channel.recv()).await {
            Ok(Ok(Some(reply))) if reply == "still there?" => Ok(()),
            other => Err(fail(format!(
                "the child died with the thread that spawned it: {other:?}"
            ))),
        }
    })
}

// ---------------------------------------------------------------------------------
// Process groups
// ---------------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Spawn, over `transport`, a shell that starts a grandchild (`sleep`) and waits for
/// it; returns the child and the grandchild's pidfd.
async fn child_with_grandchild(
    transport: &str,
) -> Result<(ipc::Child, Box<dyn Channel>, u32, OwnedFd), Failed> {
    use tokio::io::AsyncBufReadExt;
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", "sleep 1000 & echo $!; wait"])
        .stdout(Stdio::piped());
    let (mut child, channel) = ipc::registry()
        .get(transport)?
        .spawn(command, &Default::default())
        .await?;
    let stdout = child.inner_mut().stdout.take().expect("piped stdout");
    let mut line = String::new();
    tokio::time::timeout(
        GUARD,
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .map_err(|_| fail("the shell never printed its grandchild's pid"))??;
    let grandchild: u32 = line
        .trim()
        .parse()
        .map_err(|_| fail(format!("not a pid: {line:?}")))?;
    let pidfd = pidfd(grandchild).map_err(|e| fail(format!("pidfd_open: {e}")))?;
    Ok((child, channel, grandchild, pidfd))
}

fn grandchild_gone(grandchild: u32, pidfd: &OwnedFd, how: &str) -> TestResult {
    if exited_within(pidfd, GUARD) {
        return Ok(());
    }
    let _ = kill(Pid::from_raw(grandchild as i32), Signal::SIGKILL);
    Err(fail(format!(
        "grandchild {grandchild} survived {how} of its parent by {GUARD:?}"
    )))
}

fn kill_reaches_the_grandchildren(transport: &'static str) -> TestResult {
    runtime().block_on(async {
        let (mut child, _channel, grandchild, pidfd) = child_with_grandchild(transport).await?;
        child.kill()?;
        let status = tokio::time::timeout(GUARD, child.wait())
            .await
            .map_err(|_| fail("the child outlived kill()"))??;
        assert_eq!(status.to_string(), "signal: 9 (SIGKILL)");
        grandchild_gone(grandchild, &pidfd, "kill()")
    })
}

fn drop_reaches_the_grandchildren(transport: &'static str) -> TestResult {
    runtime().block_on(async {
        let (child, channel, grandchild, pidfd) = child_with_grandchild(transport).await?;
        drop((child, channel));
        grandchild_gone(grandchild, &pidfd, "the drop")
    })
}

// ---------------------------------------------------------------------------------
// Spawn failures
// ---------------------------------------------------------------------------------

fn a_failed_spawn_names_the_program(transport: &'static str) -> TestResult {
    runtime().block_on(async {
        let command = Command::new("./no-such-worker");
        let err = match ipc::registry()
            .get(transport)?
            .spawn(command, &Default::default())
            .await
        {
            Ok((child, _)) => return Err(fail(format!("spawned {child:?}?"))),
            Err(e) => e,
        };
        let msg = err.to_string();
        if msg.contains("could not start ./no-such-worker: No such file or directory") {
            Ok(())
        } else {
            Err(fail(format!(
                "{transport}: the error does not name the program: {msg}"
            )))
        }
    })
}

// ---------------------------------------------------------------------------------
// rpc
// ---------------------------------------------------------------------------------

/// Serve rpc: echo, except `"hold"` (never answered), `"panic"` (the handler's future
/// panics) and `"panic-now"` (the handler panics before returning a future). Bodies
/// are JSON texts, so that the node transport carries them too.
async fn rpc_server() -> ipc::Result<()> {
    // The panics are on purpose: keep them out of the test output.
    std::panic::set_hook(Box::new(|_| {}));
    let channel = ipc::connect_from_env().await?;
    ipc::rpc::serve(channel, |request: Bytes| {
        if request == r#""panic-now""# {
            panic!("handler exploded before its future");
        }
        async move {
            match &request[..] {
                br#""hold""# => std::future::pending().await,
                br#""panic""# => panic!("handler exploded on purpose"),
                _ => Ok(request),
            }
        }
    })
    .await
}

/// `text` as a JSON string: a body every transport carries, node included.
fn json(text: &str) -> Bytes {
    Bytes::from(format!("{text:?}"))
}

async fn spawn_rpc_server(transport: &str) -> Result<(ipc::Child, RpcClient), Failed> {
    let (child, channel) = ipc::registry()
        .get(transport)?
        .spawn(this_binary(Role::RpcServer), &Default::default())
        .await?;
    Ok((child, RpcClient::new(channel)))
}

fn every_caller_sees_peer_lost_when_the_server_dies(transport: &'static str) -> TestResult {
    const CALLS: usize = 1000;
    runtime().block_on(async {
        let (child, client) = spawn_rpc_server(transport).await?;
        let client = Arc::new(client);
        assert_eq!(client.call(json("ping"), GUARD).await?, json("ping"));
        let calls: Vec<_> = (0..CALLS)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.call(json("hold"), GUARD * 3).await })
            })
            .collect();
        // Every call registered (sent, or waiting to send behind the others).
        let deadline = tokio::time::Instant::now() + GUARD;
        while client.in_flight() < CALLS {
            if tokio::time::Instant::now() >= deadline {
                return Err(fail(format!("only {} calls in flight", client.in_flight())));
            }
            tokio::task::yield_now().await;
        }
        child.kill()?;
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        let mut repeated = None;
        for call in calls {
            let kind = match call.await.expect("call task") {
                Err(e @ Error::PeerLost(_)) => {
                    let shown = e.to_string();
                    if shown.matches("crashed").count() != 1 {
                        repeated = Some(shown);
                    }
                    "PeerLost".to_string()
                }
                Err(other) => format!("{other:?}"),
                Ok(reply) => format!("Ok({reply:?})"),
            };
            *kinds.entry(kind).or_default() += 1;
        }
        if kinds.len() != 1 || !kinds.contains_key("PeerLost") || repeated.is_some() {
            return Err(fail(format!(
                "{transport}: callers saw {kinds:?}; repeated explanation: {repeated:?}"
            )));
        }
        // A call after the death: the same answer, at once.
        match client.call(json("late"), GUARD).await {
            Err(Error::PeerLost(_)) => Ok(()),
            other => Err(fail(format!("a late call got {other:?}"))),
        }
    })
}

fn a_panicking_handler_answers_its_caller(transport: &'static str) -> TestResult {
    runtime().block_on(async {
        let (mut child, client) = spawn_rpc_server(transport).await?;
        for (request, message) in [
            ("panic", "handler exploded on purpose"),
            ("panic-now", "handler exploded before its future"),
        ] {
            match client.call(json(request), GUARD).await {
                Err(Error::Remote(why)) if why.contains(message) => {}
                other => return Err(fail(format!("{request}: expected Remote, got {other:?}"))),
            }
            // The server goes on serving.
            assert_eq!(client.call(json("after"), GUARD).await?, json("after"));
        }
        client.close().await?;
        let status = tokio::time::timeout(GUARD, child.wait())
            .await
            .map_err(|_| fail("the server did not stop after the client closed"))??;
        if status.success() {
            Ok(())
        } else {
            Err(fail(format!("server exited: {status}")))
        }
    })
}

/// The spawning thread's signal mask is the child's (the signal transport relies on
/// it), whichever thread forks.
fn a_child_starts_with_the_callers_signal_mask() -> TestResult {
    runtime().block_on(async {
        let mut command = Command::new("grep");
        command
            .args(["SigBlk", "/proc/self/status"])
            .stdout(Stdio::piped());
        let (mut child, _channel) = ipc::registry()
            .get("uds")?
            .spawn(command, &Default::default())
            .await?;
        let mut stdout = child.inner_mut().stdout.take().expect("piped stdout");
        let mut line = String::new();
        tokio::time::timeout(
            GUARD,
            tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut line),
        )
        .await
        .map_err(|_| fail("no SigBlk line"))??;
        let ours = std::fs::read_to_string("/proc/thread-self/status")?
            .lines()
            .find(|l| l.starts_with("SigBlk"))
            .map(str::to_string)
            .unwrap_or_default();
        if line.trim() == ours.trim() {
            Ok(())
        } else {
            Err(fail(format!("child {}, caller {ours}", line.trim())))
        }
    })
}

// ---------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------

/// Report this end's `binary_frames` (as JSON, which every transport carries), then
/// echo frames until the parent closes.
async fn caps_child() -> ipc::Result<()> {
    let mut parent = ipc::connect_from_env().await?;
    let binary = parent.info().binary_frames;
    parent.send(binary.to_string().into()).await?;
    while let Some(frame) = parent.recv().await? {
        parent.send(frame).await?;
    }
    Ok(parent.close().await?)
}

/// What a transport says it can do is what it does: binary frames go through (or are
/// refused), listening works (or is refused), and both ends' ChannelInfo agree.
fn capabilities_match_what_the_transport_does(transport: &'static str) -> TestResult {
    runtime().block_on(async {
        let t = ipc::registry().get(transport)?;
        let caps = t.capabilities();
        if !caps.spawn {
            return Err(fail(format!("{transport} says it cannot spawn")));
        }
        let (mut child, mut channel) = t
            .spawn(this_binary(Role::CapsChild), &Default::default())
            .await?;
        let theirs = tokio::time::timeout(GUARD, channel.recv())
            .await
            .map_err(|_| fail("no report from the child"))??;
        let expected = caps.binary_frames.to_string();
        if channel.info().binary_frames != caps.binary_frames
            || theirs.as_deref() != Some(expected.as_bytes())
        {
            return Err(fail(format!(
                "{transport}: capabilities say binary_frames={}, parent's info {}, \
                 child's info {theirs:?}",
                caps.binary_frames,
                channel.info().binary_frames
            )));
        }
        let raw = Bytes::from_static(b"\x00\xffnot json");
        match (caps.binary_frames, channel.send(raw.clone()).await) {
            (true, Ok(())) => {
                let echoed = tokio::time::timeout(GUARD, channel.recv())
                    .await
                    .map_err(|_| fail("no echo"))??;
                if echoed != Some(raw) {
                    return Err(fail(format!("{transport}: echoed {echoed:?}")));
                }
            }
            (false, Err(_)) => {}
            (binary, sent) => {
                return Err(fail(format!(
                    "{transport}: binary_frames={binary} but sending raw bytes gave {sent:?}"
                )))
            }
        }
        channel.close().await?;
        tokio::time::timeout(GUARD, child.wait())
            .await
            .map_err(|_| fail("the child did not exit"))??;

        let endpoint = t
            .example_endpoint()
            .unwrap_or_else(|| "unix:/nonexistent/ipc-test.sock".parse().expect("endpoint"));
        match (caps.listen, t.listen(&endpoint, &Default::default()).await) {
            (true, Ok(_)) | (false, Err(ipc::ListenError::Unsupported { .. })) => Ok(()),
            (listen, result) => Err(fail(format!(
                "{transport}: listen={listen} but listen() gave {:?}",
                result.map(|l| l.endpoint())
            ))),
        }
    })
}

/// Echo frames until the parent closes.
async fn echo_child() -> ipc::Result<()> {
    let mut parent = ipc::connect_from_env().await?;
    while let Some(frame) = parent.recv().await? {
        parent.send(frame).await?;
    }
    Ok(parent.close().await?)
}

fn main() {
    // Before any thread starts, so every thread (and every child) inherits the mask.
    // Only with the facade's opt-in feature `signal` (on in `cargo test --workspace`).
    #[cfg(feature = "signal")]
    ipc::signal::block_transport_signals().expect("block the signal transport's signals");
    if let Some(code) = role_main() {
        std::process::exit(code);
    }
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for transport in SPAWN_TRANSPORTS {
        trials.push(Trial::test(
            format!("orphans::{transport}::child_dies_with_its_sigkilled_parent"),
            move || child_dies_with_its_sigkilled_parent(transport),
        ));
    }
    for transport in SPAWN_TRANSPORTS.iter().copied().chain(["node"]) {
        trials.push(Trial::test(
            format!("spawn::{transport}::a_failed_spawn_names_the_program"),
            move || a_failed_spawn_names_the_program(transport),
        ));
    }
    for transport in ["uds", "tcp", "pipe", "fifo", "stdio", "node"] {
        trials.push(Trial::test(
            format!("rpc::{transport}::every_caller_sees_peer_lost_when_the_server_dies"),
            move || every_caller_sees_peer_lost_when_the_server_dies(transport),
        ));
        trials.push(Trial::test(
            format!("rpc::{transport}::a_panicking_handler_answers_its_caller"),
            move || a_panicking_handler_answers_its_caller(transport),
        ));
    }
    for transport in ipc::registry().names() {
        trials.push(Trial::test(
            format!("capabilities::{transport}::match_what_the_transport_does"),
            move || capabilities_match_what_the_transport_does(transport),
        ));
    }
    for transport in ["uds", "pipe"] {
        trials.push(Trial::test(
            format!("groups::{transport}::kill_reaches_the_grandchildren"),
            move || kill_reaches_the_grandchildren(transport),
        ));
        trials.push(Trial::test(
            format!("groups::{transport}::drop_reaches_the_grandchildren"),
            move || drop_reaches_the_grandchildren(transport),
        ));
    }
    trials.push(Trial::test(
        "orphans::a_detached_child_outlives_its_sigkilled_parent",
        a_detached_child_outlives_its_sigkilled_parent,
    ));
    trials.push(Trial::test(
        "orphans::a_child_starts_with_the_callers_signal_mask",
        a_child_starts_with_the_callers_signal_mask,
    ));
    trials.push(Trial::test(
        "orphans::a_child_outlives_the_thread_that_spawned_it",
        a_child_outlives_the_thread_that_spawned_it,
    ));
    libtest_mimic::run(&args, trials).exit();
}
